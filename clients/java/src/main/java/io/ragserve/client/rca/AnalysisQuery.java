package io.ragserve.client.rca;

import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.stream.Collectors;

/** Filters and paging of {@code GET /v1/rca/analyses}; unset fields are not sent. */
public final class AnalysisQuery {
    private final Map<String, String> params = new LinkedHashMap<>();

    public static AnalysisQuery all() {
        return new AnalysisQuery();
    }

    /** queued, running, completed or failed. */
    public AnalysisQuery status(String s) {
        return set("status", s);
    }

    /** firing or resolved. */
    public AnalysisQuery alertStatus(String s) {
        return set("alert_status", s);
    }

    public AnalysisQuery alertname(String s) {
        return set("alertname", s);
    }

    public AnalysisQuery fingerprint(String s) {
        return set("fingerprint", s);
    }

    /** Created at or after (RFC 3339). */
    public AnalysisQuery since(String rfc3339) {
        return set("since", rfc3339);
    }

    /** Created before (RFC 3339). */
    public AnalysisQuery until(String rfc3339) {
        return set("until", rfc3339);
    }

    /** Page size, 1 to 200 (server default 20). */
    public AnalysisQuery limit(int n) {
        return set("limit", Integer.toString(n));
    }

    public AnalysisQuery offset(int n) {
        return set("offset", Integer.toString(n));
    }

    /** {@code nextCursor} of the previous page. */
    public AnalysisQuery cursor(String c) {
        return set("cursor", c);
    }

    private AnalysisQuery set(String k, String v) {
        if (v == null) {
            params.remove(k);
        } else {
            params.put(k, v);
        }
        return this;
    }

    /** The query string, with a leading {@code ?} (empty when nothing is set). */
    public String toQueryString() {
        if (params.isEmpty()) {
            return "";
        }
        return "?" + params.entrySet().stream()
                .map(e -> e.getKey() + "=" + URLEncoder.encode(e.getValue(), StandardCharsets.UTF_8))
                .collect(Collectors.joining("&"));
    }
}
