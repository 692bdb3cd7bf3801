package io.ragserve.client.rca;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;

/** Knobs of one analysis; null fields take the server's defaults (and its upper bounds apply). */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record RcaOptions(
        @JsonProperty("top_k") Integer topK,
        @JsonProperty("mode") String mode,
        @JsonProperty("min_score") Double minScore,
        @JsonProperty("prometheus") Boolean prometheus,
        @JsonProperty("max_queries") Integer maxQueries,
        @JsonProperty("max_hypotheses") Integer maxHypotheses,
        @JsonProperty("max_tokens") Integer maxTokens,
        @JsonProperty("model") String model) {

    public static RcaOptions defaults() {
        return new RcaOptions(null, null, null, null, null, null, null, null);
    }

    public RcaOptions withTopK(int k) {
        return new RcaOptions(k, mode, minScore, prometheus, maxQueries, maxHypotheses, maxTokens, model);
    }

    public RcaOptions withMaxHypotheses(int n) {
        return new RcaOptions(topK, mode, minScore, prometheus, maxQueries, n, maxTokens, model);
    }

    public RcaOptions withMaxTokens(int n) {
        return new RcaOptions(topK, mode, minScore, prometheus, maxQueries, maxHypotheses, n, model);
    }

    public RcaOptions withPrometheus(boolean on) {
        return new RcaOptions(topK, mode, minScore, on, maxQueries, maxHypotheses, maxTokens, model);
    }
}
