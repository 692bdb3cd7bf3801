package io.ragserve.client.rca;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.List;

/** A page of stored analyses, newest first; pass {@code nextCursor} to get the next page. */
@JsonIgnoreProperties(ignoreUnknown = true)
public record AnalysisPage(
        @JsonProperty("data") List<StoredAnalysis> data,
        @JsonProperty("total") int total,
        @JsonProperty("limit") int limit,
        @JsonProperty("offset") int offset,
        @JsonProperty("has_more") boolean hasMore,
        @JsonProperty("next_cursor") String nextCursor) {}
