package dev.condjl.integration.cases;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

import com.google.gson.JsonObject;

import dev.condjl.topk.checkpoint.ReadOptions;
import dev.condjl.topk.Backend;
import dev.condjl.topk.TieBreak;
import dev.condjl.topk.TopK;
import dev.condjl.topk.TopKResult;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/**
 * {@code topk(x, k, coor_descent_k_ratio=9/8, n_iters=20, eps=0.1, eps_init=None, eps_decay=1.0, mask=None,
 * fused=False, non_differentiable=False)}, plus the Java extension {@code tie_break} ({@code "reference"} default or
 * {@code "by_input"}). Inputs {@code x}, optional {@code mask}. Outputs {@code values}, {@code indices} and, unless
 * non-differentiable, {@code coor_descent_values} and {@code gates}.
 */
final class TopKCase implements ReferenceCase {

    @Override
    public String name() {
        return "topk";
    }

    @Override
    public Map<String, NDArray> run(NDManager manager, JsonObject config, JsonObject forward,
            Map<String, NDArray> inputs, Optional<Path> weights, ReadOptions weightOptions) {
        CaseInputs.rejectWeights(name(), weights);
        CaseArgs args = new CaseArgs("config", config);
        int k = args.getInt("k");
        TopK.Options options = TopK.Options.builder()
                .optCoorDescentKRatio(args.getDouble("coor_descent_k_ratio", 9.0 / 8.0))
                .optIters(args.getInt("n_iters", 20))
                .optEps(args.getDouble("eps", 0.1))
                .optEpsInit(args.getDouble("eps_init"))
                .optEpsDecay(args.getDouble("eps_decay", 1.0))
                .optBackend(args.getBoolean("fused", false) ? Backend.AUTO : Backend.UNROLLED)
                .optNonDifferentiable(args.getBoolean("non_differentiable", false))
                .optTieBreak(args.getEnum("tie_break", TieBreak.class, TieBreak.REFERENCE))
                .build();
        args.rejectUnknown();
        new CaseArgs("forward", forward).rejectUnknown();

        CaseInputs tensors = new CaseInputs(inputs);
        NDArray x = tensors.require("x");
        NDArray mask = tensors.optional("mask");
        tensors.rejectUnknown();

        TopKResult result = TopK.topk(x, k, mask, options);
        Map<String, NDArray> outputs = new LinkedHashMap<>();
        outputs.put("values", result.values());
        outputs.put("indices", result.indices());
        if (result.gates() != null) {
            outputs.put("coor_descent_values", result.coorDescentValues());
            outputs.put("gates", result.gates());
        }
        return outputs;
    }
}
