package io.ragserve.client;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JavaType;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.ragserve.client.model.ChatCompletion;
import io.ragserve.client.model.ChatRequest;
import io.ragserve.client.model.CollectionInfo;
import io.ragserve.client.model.DocumentInfo;
import io.ragserve.client.model.ModelInfo;
import io.ragserve.client.model.RetrieveRequest;
import io.ragserve.client.model.RetrieveResponse;
import io.ragserve.client.rca.AlertmanagerWebhook;
import io.ragserve.client.rca.AnalysisPage;
import io.ragserve.client.rca.AnalysisQuery;
import io.ragserve.client.rca.RcaAnalysis;
import io.ragserve.client.rca.RcaRequest;
import io.ragserve.client.rca.StoredAnalysis;
import io.ragserve.client.rca.WebhookResult;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * A small client for ragserve's HTTP API: OpenAI-compatible chat (whole or streamed, with
 * citations), retrieval, the knowledge base, and the root-cause-analysis API.
 *
 * <pre>{@code
 * RagserveClient client = RagserveClient.builder().baseUrl("http://127.0.0.1:8000").build();
 * ChatCompletion r = client.chat(ChatRequest.builder("rag/default").user("What does exit code 137 mean?").build());
 * }</pre>
 *
 * <p>Thread-safe; share one instance. Errors are {@link ApiException}s typed by status; 429 and 503
 * are retried up to {@code maxRetries} times, waiting what the server's {@code Retry-After} asks for
 * (at most {@code maxRetryWait}; a longer wait is thrown at once).
 */
public final class RagserveClient {
    /** Sent as {@code User-Agent}. */
    public static final String VERSION = "0.1.0";

    private final String root;
    private final String apiKey;
    private final Duration timeout;
    private final int maxRetries;
    private final Duration maxRetryWait;
    private final HttpClient http;
    private final ObjectMapper mapper;

    private RagserveClient(Builder b) {
        String url = Objects.requireNonNull(b.baseUrl, "baseUrl");
        url = url.endsWith("/") ? url.substring(0, url.length() - 1) : url;
        this.root = url.endsWith("/v1") ? url.substring(0, url.length() - 3) : url;
        this.apiKey = b.apiKey;
        this.timeout = b.timeout;
        this.maxRetries = b.maxRetries;
        this.maxRetryWait = b.maxRetryWait;
        // HTTP/1.1: on plain http:// the JDK's default (HTTP/2) first sends `Upgrade: h2c`, and uvicorn's
        // default parser (httptools) then drops the body of that POST and reads it as a next request.
        this.http = b.httpClient != null ? b.httpClient
                : HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
                        .connectTimeout(Duration.ofSeconds(10)).build();
        this.mapper = new ObjectMapper().configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, false);
    }

    public static Builder builder() {
        return new Builder();
    }

    /** The server root (without {@code /v1}). */
    public String baseUrl() {
        return root;
    }

    /** The Jackson mapper this client reads and writes with. */
    public ObjectMapper mapper() {
        return mapper;
    }

    // -- OpenAI-compatible ------------------------------------------------------------------

    /** {@code GET /v1/models}. */
    public List<ModelInfo> models() {
        return listData(getJson("/v1/models"), ModelInfo.class);
    }

    /** {@code POST /v1/chat/completions}, whole answer; {@code citations} set for grounded requests. */
    public ChatCompletion chat(ChatRequest request) {
        return convert(postJson("/v1/chat/completions", request.toJson(mapper, false)), ChatCompletion.class);
    }

    /**
     * {@code POST /v1/chat/completions} with {@code stream: true}. Errors before the stream starts
     * are thrown here; errors inside it while iterating ({@link StreamErrorException}).
     */
    public ChatStream chatStream(ChatRequest request) {
        HttpRequest req = request("/v1/chat/completions")
                .header("Accept", "text/event-stream")
                .POST(HttpRequest.BodyPublishers.ofString(write(request.toJson(mapper, true))))
                .build();
        return new ChatStream(exchange(req).body(), mapper);
    }

    // -- retrieval and knowledge base -------------------------------------------------------

    /** {@code POST /v1/retrieve}: the passages a grounded answer would see. */
    public RetrieveResponse retrieve(RetrieveRequest request) {
        return convert(postJson("/v1/retrieve", request), RetrieveResponse.class);
    }

    /** {@code GET /v1/collections}. */
    public List<CollectionInfo> collections() {
        return listData(getJson("/v1/collections"), CollectionInfo.class);
    }

    /** {@code GET /v1/collections/{name}/documents}. */
    public List<DocumentInfo> documents(String collection) {
        return listData(getJson("/v1/collections/" + encode(collection) + "/documents"), DocumentInfo.class);
    }

    // -- root-cause analysis ----------------------------------------------------------------

    /** {@code POST /v1/rca}: analyse one alert; the analysis is also stored (see {@link #analysis}). */
    public RcaAnalysis rca(RcaRequest request) {
        ObjectNode body = mapper.valueToTree(request);
        body.put("stream", false);
        return convert(postJson("/v1/rca", body), RcaAnalysis.class);
    }

    /** {@code POST /v1/rca} with {@code stream: true}: progress events, then the result. */
    public RcaStream rcaStream(RcaRequest request) {
        ObjectNode body = mapper.valueToTree(request);
        body.put("stream", true);
        HttpRequest req = request("/v1/rca")
                .header("Accept", "text/event-stream")
                .POST(HttpRequest.BodyPublishers.ofString(write(body)))
                .build();
        return new RcaStream(exchange(req).body(), mapper);
    }

    /**
     * {@code POST /v1/alertmanager/webhook} (what Alertmanager itself calls): firing alerts are
     * analysed in the background, deduplicated by fingerprint; resolved ones mark their analysis.
     * {@code collection} null means the server's default.
     */
    public WebhookResult alertmanagerWebhook(AlertmanagerWebhook payload, String collection) {
        String path = "/v1/alertmanager/webhook" + (collection == null ? "" : "?collection=" + encode(collection));
        return convert(postJson(path, payload), WebhookResult.class);
    }

    /** {@code GET /v1/rca/analyses}: stored analyses, newest first. */
    public AnalysisPage analyses(AnalysisQuery query) {
        return convert(getJson("/v1/rca/analyses" + query.toQueryString()), AnalysisPage.class);
    }

    /** {@code GET /v1/rca/analyses/{id}}; {@link NotFoundException} when there is none. */
    public StoredAnalysis analysis(String id) {
        return convert(getJson("/v1/rca/analyses/" + encode(id)), StoredAnalysis.class);
    }

    /** Polls {@link #analysis} until it is completed or failed, or {@code timeout} passes (then the last state). */
    public StoredAnalysis awaitAnalysis(String id, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        StoredAnalysis a = analysis(id);
        while (!a.finished() && System.nanoTime() < deadline) {
            try {
                Thread.sleep(500);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return a;
            }
            a = analysis(id);
        }
        return a;
    }

    // -- generic JSON calls (for fields and routes the typed methods do not cover) ----------

    /** {@code GET path} (e.g. {@code /v1/models}) as a JSON tree. */
    public JsonNode getJson(String path) {
        return readTree(exchange(request(path).GET().build()));
    }

    /** {@code POST path} with {@code body} (a Jackson-serialisable object or tree) as JSON. */
    public JsonNode postJson(String path, Object body) {
        String json = body instanceof String s ? s : write(body);
        return readTree(exchange(request(path).POST(HttpRequest.BodyPublishers.ofString(json)).build()));
    }

    // -- plumbing ---------------------------------------------------------------------------

    HttpRequest.Builder request(String path) {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(root + path))
                .timeout(timeout)
                .header("Content-Type", "application/json")
                .header("User-Agent", "ragserve-java/" + VERSION);
        if (apiKey != null && !apiKey.isEmpty()) {
            b.header("Authorization", "Bearer " + apiKey);
        }
        return b;
    }

    static String encode(String segment) {
        return URLEncoder.encode(segment, StandardCharsets.UTF_8).replace("+", "%20");
    }

    /** Sends, retrying 429/503 as the server asks; returns a 2xx/3xx response or throws. */
    HttpResponse<InputStream> exchange(HttpRequest req) {
        for (int attempt = 0; ; attempt++) {
            HttpResponse<InputStream> r;
            try {
                r = http.send(req, HttpResponse.BodyHandlers.ofInputStream());
            } catch (IOException e) {
                throw new RagserveException("request to " + req.uri() + " failed: " + e, e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new RagserveException("interrupted while calling " + req.uri(), e);
            }
            if (r.statusCode() < 400) {
                return r;
            }
            ApiException err = toError(r.statusCode(), readBody(r), r.headers());
            Optional<Duration> wait = retryWait(err, attempt);
            if (wait.isEmpty()) {
                throw err;
            }
            try {
                Thread.sleep(wait.get().toMillis());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw err;
            }
        }
    }

    private Optional<Duration> retryWait(ApiException err, int attempt) {
        if (attempt >= maxRetries || (err.status() != 429 && err.status() != 503)) {
            return Optional.empty();
        }
        Duration wait = err.retryAfter().orElse(Duration.ofMillis(500L << Math.min(attempt, 6)));
        return wait.compareTo(maxRetryWait) > 0 ? Optional.empty() : Optional.of(wait);
    }

    private ApiException toError(int status, String body, java.net.http.HttpHeaders headers) {
        String message = body.isBlank() ? "HTTP " + status : abbreviate(body);
        String type = status == 429 ? "rate_limit_error" : status >= 500 ? "server_error" : "invalid_request_error";
        String code = null;
        String param = null;
        try {
            JsonNode err = mapper.readTree(body).get("error");
            if (err != null && err.isObject()) {
                message = textOr(err, "message", message);
                type = textOr(err, "type", type);
                code = textOr(err, "code", null);
                param = textOr(err, "param", null);
            }
        } catch (IOException notJson) {
            // keep the raw body as the message
        }
        return ApiException.of(status, message, type, code, param, retryAfter(headers), body);
    }

    /** {@code retry-after-ms} (OpenAI's, finer) or {@code Retry-After} in seconds or as an HTTP date. */
    static Duration retryAfter(java.net.http.HttpHeaders headers) {
        Optional<String> ms = headers.firstValue("retry-after-ms");
        if (ms.isPresent()) {
            try {
                return Duration.ofMillis(Math.max(0L, (long) Double.parseDouble(ms.get().trim())));
            } catch (NumberFormatException ignored) {
                // fall back to Retry-After
            }
        }
        Optional<String> ra = headers.firstValue("retry-after");
        if (ra.isEmpty()) {
            return null;
        }
        String v = ra.get().trim();
        try {
            return Duration.ofSeconds(Math.max(0L, Long.parseLong(v)));
        } catch (NumberFormatException notSeconds) {
            try {
                Duration d = Duration.between(ZonedDateTime.now(),
                        ZonedDateTime.parse(v, DateTimeFormatter.RFC_1123_DATE_TIME));
                return d.isNegative() ? Duration.ZERO : d;
            } catch (RuntimeException notDate) {
                return null;
            }
        }
    }

    private static String readBody(HttpResponse<InputStream> r) {
        try (InputStream in = r.body()) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            return "";
        }
    }

    private JsonNode readTree(HttpResponse<InputStream> r) {
        String body = readBody(r);
        try {
            return mapper.readTree(body);
        } catch (JsonProcessingException e) {
            throw new RagserveException("HTTP " + r.statusCode() + " with a body that is not JSON: "
                    + abbreviate(body), e);
        }
    }

    <T> T convert(JsonNode node, Class<T> type) {
        try {
            return mapper.treeToValue(node, type);
        } catch (JsonProcessingException e) {
            throw new RagserveException("unexpected response shape for " + type.getSimpleName() + ": "
                    + e.getOriginalMessage(), e);
        }
    }

    <T> List<T> listData(JsonNode node, Class<T> type) {
        JavaType listType = mapper.getTypeFactory().constructCollectionType(List.class, type);
        try {
            return mapper.treeToValue(node.path("data"), listType);
        } catch (JsonProcessingException e) {
            throw new RagserveException("unexpected list shape: " + e.getOriginalMessage(), e);
        }
    }

    String write(Object body) {
        try {
            return mapper.writeValueAsString(body);
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot serialise the request body: " + e.getMessage(), e);
        }
    }

    private static String textOr(JsonNode n, String field, String dflt) {
        JsonNode v = n.get(field);
        return v == null || v.isNull() ? dflt : v.asText();
    }

    private static String abbreviate(String s) {
        return s.length() > 500 ? s.substring(0, 500) + "..." : s;
    }

    /** Settings for a {@link RagserveClient}. */
    public static final class Builder {
        private String baseUrl = "http://127.0.0.1:8000";
        private String apiKey = System.getenv("RAGSERVE_API_KEY");
        private Duration timeout = Duration.ofSeconds(120);
        private int maxRetries = 2;
        private Duration maxRetryWait = Duration.ofSeconds(30);
        private HttpClient httpClient;

        /** The server root, with or without {@code /v1} (default {@code http://127.0.0.1:8000}). */
        public Builder baseUrl(String url) {
            this.baseUrl = url;
            return this;
        }

        /** Sent as {@code Authorization: Bearer <key>}; default: env {@code RAGSERVE_API_KEY}, if set. */
        public Builder apiKey(String key) {
            this.apiKey = key;
            return this;
        }

        /** Per request, until the response headers arrive (a stream may then run longer). Default 120 s. */
        public Builder timeout(Duration t) {
            this.timeout = t;
            return this;
        }

        /** Retries of 429/503 answers (default 2; 0 turns retrying off). */
        public Builder maxRetries(int n) {
            this.maxRetries = n;
            return this;
        }

        /** The longest {@code Retry-After} the client will wait out itself (default 30 s). */
        public Builder maxRetryWait(Duration d) {
            this.maxRetryWait = d;
            return this;
        }

        /**
         * A preconfigured {@link HttpClient} (proxy, TLS, executor). Build it with
         * {@code .version(HttpClient.Version.HTTP_1_1)} when the server is reached over plain http.
         */
        public Builder httpClient(HttpClient c) {
            this.httpClient = c;
            return this;
        }

        public RagserveClient build() {
            return new RagserveClient(this);
        }
    }
}
