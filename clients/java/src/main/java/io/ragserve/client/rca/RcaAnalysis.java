package io.ragserve.client.rca;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;
import io.ragserve.client.model.Usage;
import java.util.List;

/**
 * A structured analysis ({@code object = "rca.analysis"}): response of {@code POST /v1/rca} and the
 * {@code result} of a stored analysis. {@code severity} is critical, warning, info or unknown;
 * {@code runbooks} is empty when nothing in the collection matches the alert (then
 * {@code missingData} says so).
 */
@JsonIgnoreProperties(ignoreUnknown = true)
public record RcaAnalysis(
        @JsonProperty("id") String id,
        @JsonProperty("object") String object,
        @JsonProperty("created") long created,
        @JsonProperty("model") String model,
        @JsonProperty("collection") String collection,
        @JsonProperty("alert") AlertSummary alert,
        @JsonProperty("summary") String summary,
        @JsonProperty("severity") String severity,
        @JsonProperty("hypotheses") List<Hypothesis> hypotheses,
        @JsonProperty("runbooks") List<RunbookCitation> runbooks,
        @JsonProperty("missing_data") List<String> missingData,
        @JsonProperty("tool_calls") List<ToolCallRecord> toolCalls,
        @JsonProperty("usage") Usage usage,
        @JsonProperty("latency_ms") double latencyMs) {}
