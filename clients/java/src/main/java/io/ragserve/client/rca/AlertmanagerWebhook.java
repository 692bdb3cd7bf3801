package io.ragserve.client.rca;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.List;
import java.util.Map;

/** Prometheus Alertmanager's webhook payload (version 4), as Alertmanager itself would post it. */
@JsonIgnoreProperties(ignoreUnknown = true)
@JsonInclude(JsonInclude.Include.NON_NULL)
public record AlertmanagerWebhook(
        @JsonProperty("version") String version,
        @JsonProperty("groupKey") String groupKey,
        @JsonProperty("truncatedAlerts") int truncatedAlerts,
        @JsonProperty("status") String status,
        @JsonProperty("receiver") String receiver,
        @JsonProperty("groupLabels") Map<String, String> groupLabels,
        @JsonProperty("commonLabels") Map<String, String> commonLabels,
        @JsonProperty("commonAnnotations") Map<String, String> commonAnnotations,
        @JsonProperty("externalURL") String externalURL,
        @JsonProperty("alerts") List<Alert> alerts) {

    /** A group of alerts; the group's status is firing when any alert fires. */
    public static AlertmanagerWebhook of(String groupKey, String receiver, List<Alert> alerts) {
        String status = alerts.stream().anyMatch(a -> !"resolved".equals(a.status())) ? "firing" : "resolved";
        return new AlertmanagerWebhook("4", groupKey, 0, status, receiver, Map.of(), Map.of(), Map.of(), "",
                alerts);
    }
}
