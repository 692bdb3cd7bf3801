package io.ragserve.client.rca;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;

/**
 * An analysis kept by the server. {@code status}: queued, running, completed or failed;
 * {@code alertStatus}: firing or resolved; {@code source}: api or webhook; {@code result} once
 * completed, {@code error} once failed.
 */
@JsonIgnoreProperties(ignoreUnknown = true)
public record StoredAnalysis(
        @JsonProperty("id") String id,
        @JsonProperty("object") String object,
        @JsonProperty("status") String status,
        @JsonProperty("alert_status") String alertStatus,
        @JsonProperty("source") String source,
        @JsonProperty("alertname") String alertname,
        @JsonProperty("fingerprint") String fingerprint,
        @JsonProperty("collection") String collection,
        @JsonProperty("alert") AlertSummary alert,
        @JsonProperty("created_at") String createdAt,
        @JsonProperty("updated_at") String updatedAt,
        @JsonProperty("started_at") String startedAt,
        @JsonProperty("completed_at") String completedAt,
        @JsonProperty("resolved_at") String resolvedAt,
        @JsonProperty("error") String error,
        @JsonProperty("result") RcaAnalysis result) {

    /** Whether the analysis is done, one way or the other. */
    public boolean finished() {
        return "completed".equals(status) || "failed".equals(status);
    }
}
