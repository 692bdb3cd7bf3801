package io.ragserve.client.rca;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.List;
import java.util.Map;

/**
 * Evidence the caller already has. Items are numbered from 0 per kind ({@code log:0},
 * {@code metric:2}, ...), and the analysis' evidence references use these ids.
 */
@JsonInclude(JsonInclude.Include.NON_EMPTY)
public record RcaEvidence(
        @JsonProperty("logs") List<Log> logs,
        @JsonProperty("metrics") List<Metric> metrics,
        @JsonProperty("traces") List<Trace> traces,
        @JsonProperty("changes") List<Change> changes) {

    public static RcaEvidence none() {
        return new RcaEvidence(List.of(), List.of(), List.of(), List.of());
    }

    public static RcaEvidence logs(String... lines) {
        return new RcaEvidence(java.util.Arrays.stream(lines).map(l -> new Log(l, null, null)).toList(),
                List.of(), List.of(), List.of());
    }

    public RcaEvidence withChanges(List<Change> c) {
        return new RcaEvidence(logs, metrics, traces, c);
    }

    public RcaEvidence withMetrics(List<Metric> m) {
        return new RcaEvidence(logs, m, traces, changes);
    }

    public RcaEvidence withTraces(List<Trace> t) {
        return new RcaEvidence(logs, metrics, t, changes);
    }

    /** A log line ({@code log:<n>}). */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record Log(
            @JsonProperty("text") String text,
            @JsonProperty("timestamp") String timestamp,
            @JsonProperty("source") String source) {}

    /** A metric series, or a PromQL query for the server's bounded {@code prometheus_query} tool ({@code metric:<n>}). */
    @JsonInclude(JsonInclude.Include.NON_EMPTY)
    public record Metric(
            @JsonProperty("name") String name,
            @JsonProperty("query") String query,
            @JsonProperty("labels") Map<String, String> labels,
            @JsonProperty("samples") List<Sample> samples) {}

    /** One sample of a series. */
    public record Sample(@JsonProperty("timestamp") String timestamp, @JsonProperty("value") double value) {}

    /** A trace or span ({@code trace:<n>}). */
    @JsonInclude(JsonInclude.Include.NON_EMPTY)
    public record Trace(
            @JsonProperty("trace_id") String traceId,
            @JsonProperty("span_id") String spanId,
            @JsonProperty("service") String service,
            @JsonProperty("name") String name,
            @JsonProperty("duration_ms") Double durationMs,
            @JsonProperty("status") String status,
            @JsonProperty("attributes") Map<String, String> attributes) {}

    /** A recent change: deployment, config change, feature flag ({@code change:<n>}). */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record Change(
            @JsonProperty("description") String description,
            @JsonProperty("id") String id,
            @JsonProperty("timestamp") String timestamp,
            @JsonProperty("kind") String kind,
            @JsonProperty("author") String author) {}
}
