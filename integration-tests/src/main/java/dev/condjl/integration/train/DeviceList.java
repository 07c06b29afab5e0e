package dev.condjl.integration.train;

import ai.djl.Device;
import ai.djl.engine.Engine;

import java.util.ArrayList;
import java.util.List;

/** Parses {@code --devices}: {@code cpu}, {@code gpu} (every visible GPU) or {@code gpu:0,1}. */
public final class DeviceList {

    private DeviceList() {}

    /**
     * Parses a device list and checks that the PyTorch engine sees the GPUs it names.
     *
     * @param spec {@code cpu}, {@code gpu} or {@code gpu:i,j,...}
     * @return the devices, first = where the master weights live
     * @throws IllegalArgumentException on a malformed list or GPUs the engine does not see
     */
    public static Device[] parse(String spec) {
        String s = spec.trim().toLowerCase(java.util.Locale.ROOT);
        if ("cpu".equals(s)) {
            return new Device[] {Device.cpu()};
        }
        if (!s.startsWith("gpu")) {
            throw new IllegalArgumentException("--devices (" + spec + ") must be cpu, gpu or gpu:0,1,...");
        }
        int visible = Engine.getEngine("PyTorch").getGpuCount();
        if (visible == 0) {
            throw new IllegalArgumentException("--devices " + spec + ": DJL's PyTorch engine sees no GPU (CPU-only "
                    + "natives, or no CUDA device); use --devices cpu");
        }
        List<Device> devices = new ArrayList<>();
        if ("gpu".equals(s)) {
            for (int i = 0; i < visible; i++) {
                devices.add(Device.gpu(i));
            }
        } else if (s.startsWith("gpu:")) {
            for (String part : s.substring(4).split(",")) {
                int id;
                try {
                    id = Integer.parseInt(part.trim());
                } catch (NumberFormatException e) {
                    throw new IllegalArgumentException(
                            "--devices (" + spec + "): '" + part + "' is not a GPU index", e);
                }
                if (id < 0 || id >= visible) {
                    throw new IllegalArgumentException(
                            "--devices (" + spec + "): GPU " + id + " does not exist; " + visible + " visible");
                }
                devices.add(Device.gpu(id));
            }
        } else {
            throw new IllegalArgumentException("--devices (" + spec + ") must be cpu, gpu or gpu:0,1,...");
        }
        return devices.toArray(new Device[0]);
    }
}
