package io.ragserve.client.model;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;

/** One ingested document ({@code GET /v1/collections/{name}/documents}). */
@JsonIgnoreProperties(ignoreUnknown = true)
public record DocumentInfo(
        @JsonProperty("document_id") String documentId,
        @JsonProperty("source") String source,
        @JsonProperty("chunks") int chunks,
        @JsonProperty("sha256") String sha256,
        @JsonProperty("ingested_at") String ingestedAt) {}
