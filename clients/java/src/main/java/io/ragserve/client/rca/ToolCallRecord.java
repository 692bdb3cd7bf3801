package io.ragserve.client.rca;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.Map;

/** A server-side tool call made for the analysis (e.g. a bounded {@code prometheus_query}). */
@JsonIgnoreProperties(ignoreUnknown = true)
public record ToolCallRecord(
        @JsonProperty("name") String name,
        @JsonProperty("arguments") Map<String, Object> arguments,
        @JsonProperty("ok") boolean ok,
        @JsonProperty("ref") String ref,
        @JsonProperty("error") String error) {}
