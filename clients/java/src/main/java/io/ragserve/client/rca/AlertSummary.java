package io.ragserve.client.rca;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.Map;

/** The alert an analysis is about. */
@JsonIgnoreProperties(ignoreUnknown = true)
public record AlertSummary(
        @JsonProperty("alertname") String alertname,
        @JsonProperty("fingerprint") String fingerprint,
        @JsonProperty("status") String status,
        @JsonProperty("labels") Map<String, String> labels,
        @JsonProperty("annotations") Map<String, String> annotations,
        @JsonProperty("startsAt") String startsAt,
        @JsonProperty("endsAt") String endsAt,
        @JsonProperty("generatorURL") String generatorURL) {}
