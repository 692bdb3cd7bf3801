package io.ragserve.client.rca;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;

/**
 * One piece of evidence for a hypothesis: {@code kind} runbook, log, metric, trace or change;
 * {@code ref} such as {@code runbook:1} or {@code log:0} (verified by the server); {@code excerpt}
 * the server's copy of that item's text.
 */
@JsonIgnoreProperties(ignoreUnknown = true)
public record EvidenceRef(
        @JsonProperty("kind") String kind,
        @JsonProperty("ref") String ref,
        @JsonProperty("excerpt") String excerpt) {}
