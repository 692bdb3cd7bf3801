package io.ragserve.client.rca;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.List;

/** Response of {@code POST /v1/alertmanager/webhook} (202): what was done with each alert. */
@JsonIgnoreProperties(ignoreUnknown = true)
public record WebhookResult(
        @JsonProperty("object") String object,
        @JsonProperty("groupKey") String groupKey,
        @JsonProperty("alerts") List<AlertResult> alerts) {

    /** {@code action}: queued, duplicate, resolved or ignored. */
    @JsonIgnoreProperties(ignoreUnknown = true)
    public record AlertResult(
            @JsonProperty("alertname") String alertname,
            @JsonProperty("fingerprint") String fingerprint,
            @JsonProperty("status") String status,
            @JsonProperty("action") String action,
            @JsonProperty("analysis_id") String analysisId) {}
}
