package io.ragserve.client.rca;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.List;

/** One candidate root cause; {@code confidence} is 0 to 1. */
@JsonIgnoreProperties(ignoreUnknown = true)
public record Hypothesis(
        @JsonProperty("title") String title,
        @JsonProperty("confidence") double confidence,
        @JsonProperty("reasoning") String reasoning,
        @JsonProperty("evidence") List<EvidenceRef> evidence,
        @JsonProperty("checks") List<String> checks,
        @JsonProperty("remediation") String remediation) {}
