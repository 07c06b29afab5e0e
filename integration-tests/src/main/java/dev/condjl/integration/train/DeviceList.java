package dev.condjl.integration.train;

import ai.djl.Device;
import ai.djl.engine.Engine;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.TreeSet;

/**
 * Parses {@code --devices}: {@code cpu}, {@code gpu} (every visible GPU) or {@code gpu:0,1}.
 *
 * <p>There is exactly one CPU device and each GPU appears at most once: DJL has a single CPU {@link Device} (every
 * {@code Device.of("cpu", i)} is {@code Device.cpu()}), and its {@code Trainer} refuses a device twice ("Duplicated
 * devices are not allowed", {@code ParameterStore.setParameterServer}), so {@code cpu,cpu}, {@code cpu:0,1} or
 * {@code gpu:0,0} cannot split a batch; they are rejected here with that reason. GPUs come back in ascending order.
 */
public final class DeviceList {

    private static final String FORMS = "must be cpu, gpu or gpu:0,1,...";

    private DeviceList() {}

    /**
     * Parses a device list and checks that the PyTorch engine sees the GPUs it names.
     *
     * @param spec {@code cpu}, {@code gpu} or {@code gpu:i,j,...}
     * @return the devices, GPUs in ascending order, first = where the master weights live
     * @throws IllegalArgumentException on a malformed list, a device named twice, several CPUs, or GPUs the engine
     *     does not see
     */
    public static Device[] parse(String spec) {
        String s = spec.trim().toLowerCase(Locale.ROOT);
        if ("cpu".equals(s)) {
            return new Device[] {Device.cpu()};
        }
        if (s.startsWith("cpu")) {
            throw new IllegalArgumentException("--devices (" + spec + "): DJL has one CPU device and its Trainer "
                    + "refuses a device twice, so a batch cannot be split over CPUs; use --devices cpu (--threads "
                    + "sets the CPU threads)");
        }
        // ascending: DJL's ParameterStore lists a parameter's copies in its device map's hash order and reads them
        // by the device's index in the list; the two agree for gpu(0..9) in ascending order only
        Set<Integer> ids = new TreeSet<>();
        if (s.startsWith("gpu:")) {
            for (String part : s.substring(4).split(",")) {
                int id;
                try {
                    id = Integer.parseInt(part.trim());
                } catch (NumberFormatException e) {
                    throw new IllegalArgumentException(
                            "--devices (" + spec + "): '" + part + "' is not a GPU index", e);
                }
                if (!ids.add(id)) {
                    throw new IllegalArgumentException("--devices (" + spec + "): GPU " + id + " is named twice; "
                            + "DJL's Trainer holds one copy of the parameters per device and refuses duplicates");
                }
            }
        } else if (!"gpu".equals(s)) {
            throw new IllegalArgumentException("--devices (" + spec + ") " + FORMS);
        }
        int visible = Engine.getEngine("PyTorch").getGpuCount();
        if (visible == 0) {
            throw new IllegalArgumentException("--devices " + spec + ": DJL's PyTorch engine sees no GPU (CPU-only "
                    + "natives, or no CUDA device); use --devices cpu");
        }
        if (ids.isEmpty()) {
            for (int i = 0; i < visible; i++) {
                ids.add(i);
            }
        }
        List<Device> devices = new ArrayList<>();
        for (int id : ids) {
            if (id < 0 || id >= visible) {
                throw new IllegalArgumentException(
                        "--devices (" + spec + "): GPU " + id + " does not exist; " + visible + " visible");
            }
            devices.add(Device.gpu(id));
        }
        return devices.toArray(new Device[0]);
    }
}
