package dev.condjl.integration.cases;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;

import com.google.gson.JsonObject;

import dev.condjl.topk.checkpoint.ReadOptions;
import dev.condjl.topk.Backend;
import dev.condjl.topk.CoordinateDescent;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/**
 * {@code coor_descent(s, n_iters, k, eps=0.1, eps_init=None, eps_decay=1.0, mask=None)}. Config: {@code n_iters},
 * {@code k} (a number, or an input tensor {@code k}), {@code eps}, {@code eps_init}, {@code eps_decay}, and the Java
 * extension {@code backend} ({@code "unrolled"} default, {@code "auto"}, ...). Inputs {@code s}, optional {@code mask},
 * {@code k}, {@code grad_output}. Outputs {@code output}, and {@code grad_s = d(sum(output·grad_output))/ds} when
 * {@code grad_output} is given.
 */
final class CoorDescentCase implements ReferenceCase {

    @Override
    public String name() {
        return "coor_descent";
    }

    @Override
    public Map<String, NDArray> run(NDManager manager, JsonObject config, JsonObject forward,
            Map<String, NDArray> inputs, Optional<Path> weights, ReadOptions weightOptions) {
        CaseInputs.rejectWeights(name(), weights);
        CaseArgs args = new CaseArgs("config", config);
        CoordinateDescent.Options options = CoordinateDescent.Options.builder()
                .setIters(args.getInt("n_iters"))
                .optEps(args.getDouble("eps", 0.1))
                .optEpsInit(args.getDouble("eps_init"))
                .optEpsDecay(args.getDouble("eps_decay", 1.0))
                .optBackend(args.getEnum("backend", Backend.class, Backend.UNROLLED))
                .build();
        Double kNumber = args.getDouble("k");
        args.rejectUnknown();
        new CaseArgs("forward", forward).rejectUnknown();

        CaseInputs tensors = new CaseInputs(inputs);
        NDArray s = tensors.require("s");
        NDArray mask = tensors.optional("mask");
        NDArray kTensor = tensors.optional("k");
        NDArray gradOutput = tensors.optional("grad_output", s.getDataType(), s.getShape());
        tensors.rejectUnknown();
        if ((kNumber == null) == (kTensor == null)) {
            throw new IllegalArgumentException("give k either as config.k or as input tensor 'k', not "
                    + (kNumber == null ? "neither" : "both"));
        }

        Map<String, NDArray> outputs = new LinkedHashMap<>();
        if (gradOutput == null) {
            outputs.put("output", solve(s, kNumber, kTensor, mask, options));
            return outputs;
        }
        s.setRequiresGradient(true);
        try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
            NDArray output = solve(s, kNumber, kTensor, mask, options);
            collector.backward(output.mul(gradOutput).sum());
            outputs.put("output", output);
        }
        outputs.put("grad_s", s.getGradient());
        return outputs;
    }

    private static NDArray solve(NDArray s, Double kNumber, NDArray kTensor, NDArray mask,
            CoordinateDescent.Options options) {
        return kTensor == null
                ? CoordinateDescent.solve(s, kNumber, mask, options)
                : CoordinateDescent.solve(s, kTensor, mask, options);
    }
}
