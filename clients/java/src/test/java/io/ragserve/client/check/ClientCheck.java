package io.ragserve.client.check;

import static io.ragserve.client.check.Checks.check;
import static io.ragserve.client.check.Checks.clip;
import static io.ragserve.client.check.Checks.expect;

import io.ragserve.client.AuthenticationException;
import io.ragserve.client.BadRequestException;
import io.ragserve.client.ChatStream;
import io.ragserve.client.NotFoundException;
import io.ragserve.client.RagserveClient;
import io.ragserve.client.RateLimitException;
import io.ragserve.client.ServiceUnavailableException;
import io.ragserve.client.StreamErrorException;
import io.ragserve.client.model.ChatCompletion;
import io.ragserve.client.model.ChatCompletionChunk;
import io.ragserve.client.model.ChatRequest;
import io.ragserve.client.model.Citation;
import io.ragserve.client.model.CollectionInfo;
import io.ragserve.client.model.ModelInfo;
import io.ragserve.client.model.RagOptions;
import io.ragserve.client.model.RetrieveRequest;
import io.ragserve.client.model.RetrieveResponse;
import io.ragserve.client.model.SearchHit;
import io.ragserve.client.model.StreamedAnswer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * Checks the Java client against a running ragserve and exits non-zero on any failure.
 *
 * <pre>
 * java -cp ... io.ragserve.client.check.ClientCheck --base-url http://127.0.0.1:8000 --suite live
 * </pre>
 * Suites: {@code live} (a real engine and the sample corpus in {@code default}), {@code rca} (the
 * root-cause-analysis API on the same), {@code limits}
 * (a gateway with API keys: {@code --key} a valid key, {@code --limited-key} one with a small
 * requests-per-minute limit), {@code engine-down} (a gateway whose engine is unreachable),
 * {@code stream-error} (a gateway whose per-request deadline cuts a slow stream).
 */
public final class ClientCheck {
    private final Map<String, String> opts;
    private final Checks checks = new Checks();

    private ClientCheck(Map<String, String> opts) {
        this.opts = opts;
    }

    public static void main(String[] args) {
        Map<String, String> opts = new HashMap<>();
        for (int i = 0; i + 1 < args.length; i += 2) {
            if (!args[i].startsWith("--")) {
                break;
            }
            opts.put(args[i].substring(2), args[i + 1]);
        }
        if (!opts.containsKey("base-url") || !opts.containsKey("suite")) {
            System.err.println("usage: ClientCheck --base-url URL --suite live|rca|limits|engine-down|stream-error [--key K] "
                    + "[--limited-key K]");
            System.exit(2);
        }
        ClientCheck c = new ClientCheck(opts);
        switch (opts.get("suite")) {
            case "live" -> c.live();
            case "rca" -> RcaCheck.run(c.client(2), c.checks);
            case "limits" -> c.limits();
            case "engine-down" -> c.engineDown();
            case "stream-error" -> c.streamError();
            default -> {
                System.err.println("unknown suite " + opts.get("suite"));
                System.exit(2);
            }
        }
        System.exit(c.checks.finish());
    }

    private RagserveClient client(int maxRetries) {
        return RagserveClient.builder()
                .baseUrl(opts.get("base-url"))
                .apiKey(opts.getOrDefault("key", ""))
                .timeout(Duration.ofSeconds(180))
                .maxRetries(maxRetries)
                .build();
    }

    // -- a real engine behind the gateway ------------------------------------------------------

    private void live() {
        RagserveClient client = client(2);
        String[] base = new String[1];

        checks.run("models lists rag/<collection>", () -> {
            List<ModelInfo> models = client.models();
            ModelInfo rag = models.stream().filter(m -> m.id().equals("rag/default")).findFirst()
                    .orElseThrow(() -> new AssertionError("rag/default not listed: " + models));
            check("rag".equals(rag.kind()) && "default".equals(rag.collection()), "rag model card: " + rag);
            base[0] = models.stream().filter(m -> m.kind() == null && m.parent() == null)
                    .map(ModelInfo::id).findFirst().orElseThrow(() -> new AssertionError("no base model"));
            return "base=" + base[0] + " models=" + models.stream().map(ModelInfo::id).toList();
        });

        checks.run("collections and documents", () -> {
            CollectionInfo def = client.collections().stream().filter(c -> c.name().equals("default"))
                    .findFirst().orElseThrow(() -> new AssertionError("no default collection"));
            check(def.documents() >= 6 && def.chunks() >= def.documents(), "default: " + def);
            Set<String> ids = client.documents("default").stream().map(d -> d.documentId())
                    .collect(Collectors.toSet());
            check(ids.contains("guide/ingesting-documents.md"), "documents: " + ids);
            return "default: " + def.documents() + " documents, " + def.chunks() + " chunks, dim "
                    + def.dimension();
        });

        checks.run("chat (whole answer, usage)", () -> {
            ChatCompletion r = client.chat(ChatRequest.builder(base[0])
                    .user("What is the capital of France?").maxTokens(24).temperature(0).build());
            check("chat.completion".equals(r.object()) && r.id() != null, "object/id: " + r.object());
            check(!r.content().isBlank(), "empty answer");
            check(List.of("stop", "length").contains(r.finishReason()), "finish_reason " + r.finishReason());
            check(r.usage() != null && r.usage().promptTokens() > 0 && r.usage().completionTokens() > 0
                    && r.usage().totalTokens() == r.usage().promptTokens() + r.usage().completionTokens(),
                    "usage " + r.usage());
            check(r.citations() == null, "a plain request carries no citations");
            return "\"" + clip(r.content(), 80) + "\" " + r.finishReason() + " " + r.usage();
        });

        checks.run("grounded chat has citations", () -> {
            ChatCompletion r = client.chat(ChatRequest.builder("rag/default")
                    .user("How do I upload files over HTTP for ingestion?").maxTokens(96).temperature(0).build());
            check(!r.content().isBlank(), "empty answer");
            List<Citation> cs = r.citations();
            check(cs != null && !cs.isEmpty(), "no citations");
            for (int i = 0; i < cs.size(); i++) {
                Citation c = cs.get(i);
                check(c.index() == i + 1, "citation indices must run 1..n: " + cs);
                check(!c.text().isBlank() && !c.chunkId().isBlank() && !c.source().isBlank(), "citation " + c);
                check(c.cited() != null, "cited flag missing");
            }
            Set<String> docs = cs.stream().map(Citation::documentId).collect(Collectors.toSet());
            check(docs.contains("guide/ingesting-documents.md"), "cited documents " + docs);
            check("rag/default".equals(r.model()), "model echoed as " + r.model());
            return "\"" + clip(r.content(), 70) + "\" citations=" + describe(cs);
        });

        checks.run("stream: deltas, finish, citations", () -> {
            List<ChatCompletionChunk> chunks = new ArrayList<>();
            try (ChatStream s = client.chatStream(ChatRequest.builder("rag/default")
                    .user("What does exit code 137 mean for a pod?").maxTokens(48).temperature(0).build())) {
                for (ChatCompletionChunk c : s) {
                    chunks.add(c);
                }
            }
            check(chunks.size() > 2, "only " + chunks.size() + " chunks");
            check(chunks.stream().map(ChatCompletionChunk::id).distinct().count() == 1, "ids differ");
            check(chunks.stream().allMatch(c -> "chat.completion.chunk".equals(c.object())), "object field");
            ChatCompletionChunk last = chunks.get(chunks.size() - 1);
            check(last.citations() != null && !last.citations().isEmpty(), "no citations on the final chunk");
            check(chunks.subList(0, chunks.size() - 1).stream().allMatch(c -> c.citations() == null),
                    "citations before the final chunk");
            check(last.usage() != null && last.usage().completionTokens() > 0, "usage on final chunk");
            List<ChatCompletionChunk> withChoices = chunks.stream()
                    .filter(c -> c.choices() != null && !c.choices().isEmpty()).toList();
            String finish = withChoices.get(withChoices.size() - 1).choices().get(0).finishReason();
            check(List.of("stop", "length").contains(finish), "finish_reason " + finish);
            check(withChoices.subList(0, withChoices.size() - 1).stream()
                    .allMatch(c -> c.choices().get(0).finishReason() == null), "finish_reason set early");
            String text = chunks.stream().map(ChatCompletionChunk::deltaContent).collect(Collectors.joining());
            check(!text.isBlank(), "assembled text is empty");
            Set<String> docs = last.citations().stream().map(Citation::documentId).collect(Collectors.toSet());
            check(docs.contains("runbooks/pod-oomkilled.md"), "cited documents " + docs);
            return chunks.size() + " chunks, finish=" + finish + ", \"" + clip(text, 60) + "\" citations="
                    + describe(last.citations());
        });

        checks.run("stream with the rag extension field", () -> {
            List<String> deltas = new ArrayList<>();
            StreamedAnswer a = client.chatStream(ChatRequest.builder(base[0])
                    // A question the sample corpus answers: one it does not gets "I don't know" from the
                    // gateway without the model (the relevance gate: two deltas, zero usage).
                    .user("Which command removes unused container images on a node?")
                    .rag(RagOptions.collection("default").withTopK(2).withMode("hybrid"))
                    .maxTokens(40).temperature(0).build()).collect(deltas::add);
            check(deltas.size() > 1 && String.join("", deltas).equals(a.content()), "deltas vs content");
            check(a.finishReason() != null, "no finish_reason");
            check(a.citations() != null && !a.citations().isEmpty() && a.citations().size() <= 2,
                    "top_k=2 citations: " + a.citations());
            check(a.usage() != null && a.usage().completionTokens() > 0, "usage " + a.usage());
            check(base[0].equals(a.model()), "model " + a.model());
            return deltas.size() + " deltas, finish=" + a.finishReason() + ", usage=" + a.usage()
                    + ", citations=" + describe(a.citations());
        });

        checks.run("retrieve (hybrid and bm25)", () -> {
            RetrieveResponse r = client.retrieve(RetrieveRequest.of("pod exit code 137 OOMKilled", "default", 3));
            check(r.results().size() >= 1 && r.results().size() <= 3, "hits " + r.results().size());
            check("default".equals(r.collection()) && r.mode() != null, "collection/mode " + r);
            for (int i = 0; i < r.results().size(); i++) {
                SearchHit h = r.results().get(i);
                check(!h.source().isBlank() && !h.text().isBlank() && !h.chunkId().isBlank(), "hit " + h);
                check(i == 0 || r.results().get(i - 1).score() >= h.score(), "scores not descending");
            }
            check(r.results().get(0).documentId().equals("runbooks/pod-oomkilled.md"),
                    "top hit " + r.results().get(0).documentId());
            RetrieveResponse b = client.retrieve(new RetrieveRequest("OOMKilled", "default", 2, "bm25", null));
            check("bm25".equals(b.mode()) && !b.results().isEmpty(), "bm25 " + b);
            return r.mode() + ": " + r.results().stream()
                    .map(h -> h.documentId() + "@" + String.format("%.3f", h.score())).toList()
                    + "; bm25 top " + b.results().get(0).source();
        });

        checks.run("errors are typed (404, 400)", () -> {
            NotFoundException nf = expect(NotFoundException.class, () -> client.chat(
                    ChatRequest.builder("no-such-model").user("x").maxTokens(4).build()));
            check(nf.status() == 404 && "invalid_request_error".equals(nf.type())
                    && "model_not_found".equals(nf.code()), "unknown model: " + nf);
            NotFoundException ns = expect(NotFoundException.class, () -> client.chatStream(
                    ChatRequest.builder("no-such-model").user("x").maxTokens(4).build()).collect());
            check(ns.status() == 404, "stream to unknown model: " + ns);
            NotFoundException nc = expect(NotFoundException.class, () ->
                    client.retrieve(RetrieveRequest.of("x", "no-such-collection", 2)));
            check("collection_not_found".equals(nc.code()) && "collection".equals(nc.param()), "collection: " + nc);
            NotFoundException nr = expect(NotFoundException.class, () -> client.chat(
                    ChatRequest.builder("rag/no-such-collection").user("x").maxTokens(4).build()));
            check("collection_not_found".equals(nr.code()), "rag model: " + nr);
            BadRequestException br = expect(BadRequestException.class, () -> client.chat(
                    ChatRequest.builder(base[0]).user("x").temperature(5).build()));
            check(br.status() == 400 && "temperature".equals(br.param())
                    && "invalid_request_error".equals(br.type()), "temperature: " + br);
            BadRequestException cl = expect(BadRequestException.class, () -> client.chat(
                    ChatRequest.builder(base[0]).user("incident ".repeat(3000)).maxTokens(16).build()));
            check("context_length_exceeded".equals(cl.code()), "long prompt: " + cl);
            check(nf.retryAfter().isEmpty(), "no Retry-After on a 404");
            return "404 " + nf.code() + " / " + nc.code() + " (param " + nc.param() + "); 400 param "
                    + br.param() + " / " + cl.code();
        });
    }

    // -- a gateway with API keys and limits ----------------------------------------------------

    private void limits() {
        String url = opts.get("base-url");
        checks.run("401 without a key", () -> {
            RagserveClient anon = RagserveClient.builder().baseUrl(url).apiKey("").maxRetries(0).build();
            AuthenticationException e = expect(AuthenticationException.class, anon::models);
            check(e.status() == 401 && "authentication_error".equals(e.type()), "401: " + e);
            RagserveClient wrong = RagserveClient.builder().baseUrl(url).apiKey("not-a-key").maxRetries(0).build();
            AuthenticationException w = expect(AuthenticationException.class, wrong::collections);
            check(w.code() != null, "401 code: " + w);
            return e.code() + " / " + w.code() + ": " + clip(w.errorMessage(), 60);
        });

        checks.run("a valid key is accepted", () -> {
            RagserveClient ok = RagserveClient.builder().baseUrl(url).apiKey(opts.get("key")).build();
            List<CollectionInfo> cols = ok.collections();
            check(!cols.isEmpty(), "no collections visible");
            return "collections " + cols.stream().map(CollectionInfo::name).toList();
        });

        checks.run("429 carries Retry-After", () -> {
            RagserveClient noRetry = RagserveClient.builder().baseUrl(url).apiKey(opts.get("limited-key"))
                    .maxRetries(0).build();
            RateLimitException e = null;
            int calls = 0;
            while (e == null && calls < 200) {
                calls++;
                try {
                    noRetry.models();
                } catch (RateLimitException rl) {
                    e = rl;
                }
            }
            check(e != null, "no 429 after " + calls + " calls");
            check(e.status() == 429 && "rate_limit_error".equals(e.type()) && "rate_limit_exceeded".equals(e.code()),
                    "429: " + e);
            Duration ra = e.retryAfter().orElseThrow(() -> new AssertionError("no Retry-After"));
            check(!ra.isNegative() && ra.compareTo(Duration.ofSeconds(60)) <= 0, "Retry-After " + ra);
            return "after " + calls + " calls: " + e.code() + ", Retry-After " + ra.toMillis() + " ms";
        });

        checks.run("retries wait out Retry-After", () -> {
            RagserveClient noRetry = RagserveClient.builder().baseUrl(url).apiKey(opts.get("limited-key"))
                    .maxRetries(0).build();
            RagserveClient retrying = RagserveClient.builder().baseUrl(url).apiKey(opts.get("limited-key"))
                    .maxRetries(3).maxRetryWait(Duration.ofSeconds(5)).build();
            RateLimitException empty = expect(RateLimitException.class, noRetry::models); // bucket is empty
            long asked = empty.retryAfter().orElseThrow().toMillis();
            long t0 = System.nanoTime();
            List<ModelInfo> models = retrying.models(); // 429, wait Retry-After, retry
            long ms = (System.nanoTime() - t0) / 1_000_000;
            check(!models.isEmpty(), "models after retry");
            check(ms >= asked - 50, "answered after " + ms + " ms although the bucket refills in " + asked + " ms");
            return "bucket empty (Retry-After " + asked + " ms); succeeded after waiting " + ms + " ms";
        });

        checks.run("too long a Retry-After is thrown", () -> {
            RagserveClient impatient = RagserveClient.builder().baseUrl(url).apiKey(opts.get("limited-key"))
                    .maxRetries(3).maxRetryWait(Duration.ofMillis(1)).build();
            RateLimitException e = null;
            long t0 = System.nanoTime();
            for (int i = 0; i < 200 && e == null; i++) {
                try {
                    impatient.models();
                } catch (RateLimitException rl) {
                    e = rl;
                }
            }
            check(e != null, "no 429");
            return "thrown with Retry-After " + e.retryAfter().map(Duration::toMillis).orElse(-1L) + " ms after "
                    + (System.nanoTime() - t0) / 1_000_000 + " ms";
        });
    }

    // -- a gateway whose engine is unreachable ---------------------------------------------------

    private void engineDown() {
        String url = opts.get("base-url");
        String model = opts.getOrDefault("model", "m");
        checks.run("503 with Retry-After", () -> {
            RagserveClient c = RagserveClient.builder().baseUrl(url).maxRetries(0).build();
            ServiceUnavailableException e = expect(ServiceUnavailableException.class, () ->
                    c.chat(ChatRequest.builder(model).user("hi").maxTokens(4).build()));
            check(e.status() == 503 && "engine_unavailable".equals(e.code())
                    && "service_unavailable".equals(e.type()), "503: " + e);
            Duration ra = e.retryAfter().orElseThrow(() -> new AssertionError("no Retry-After"));
            ServiceUnavailableException s = expect(ServiceUnavailableException.class, () ->
                    c.chatStream(ChatRequest.builder(model).user("hi").maxTokens(4).build()));
            check(s.retryAfter().isPresent(), "stream 503 without Retry-After");
            return e.code() + ", Retry-After " + ra.getSeconds() + " s: " + clip(e.errorMessage(), 60);
        });

        checks.run("503 beyond maxRetryWait: no wait", () -> {
            RagserveClient c = RagserveClient.builder().baseUrl(url).maxRetries(3)
                    .maxRetryWait(Duration.ofMillis(500)).build();
            long t0 = System.nanoTime();
            ServiceUnavailableException e = expect(ServiceUnavailableException.class, () ->
                    c.chat(ChatRequest.builder(model).user("hi").maxTokens(4).build()));
            long ms = (System.nanoTime() - t0) / 1_000_000;
            long asked = e.retryAfter().orElseThrow().toMillis();
            check(asked > 500 && ms < asked, "waited " + ms + " ms for a Retry-After of " + asked + " ms");
            return "thrown after " + ms + " ms (Retry-After " + asked + " ms > maxRetryWait 500 ms)";
        });

        checks.run("the gateway still lists models", () -> {
            RagserveClient c = RagserveClient.builder().baseUrl(url).maxRetries(0).build();
            List<String> ids = c.models().stream().map(ModelInfo::id).toList();
            check(ids.contains(model), "models " + ids);
            return "models " + ids;
        });
    }

    // -- a stream cut by the gateway's per-request deadline --------------------------------------

    private void streamError() {
        String url = opts.get("base-url");
        String model = opts.getOrDefault("model", "m");
        RagserveClient c = RagserveClient.builder().baseUrl(url).maxRetries(0).build();
        checks.run("error inside a started stream", () -> {
            List<String> deltas = new ArrayList<>();
            StreamErrorException e = expect(StreamErrorException.class, () -> c.chatStream(
                    ChatRequest.builder(model).user("Tell me a long story.").maxTokens(200).build())
                    .collect(deltas::add));
            check(e.status() == 200 && "request_timeout".equals(e.code()), "stream error " + e);
            check(!deltas.isEmpty(), "the text before the error was not delivered");
            return deltas.size() + " deltas, then " + e.type() + " (" + e.code() + "): "
                    + clip(e.errorMessage(), 60);
        });
        checks.run("stream error while iterating", () -> {
            List<ChatCompletionChunk> chunks = new ArrayList<>();
            StreamErrorException e = expect(StreamErrorException.class, () -> {
                try (ChatStream s = c.chatStream(ChatRequest.builder(model).user("Again.").maxTokens(200).build())) {
                    for (ChatCompletionChunk ch : s) {
                        chunks.add(ch);
                    }
                }
                return chunks;
            });
            check(!chunks.isEmpty() && chunks.stream().allMatch(ch -> ch.citations() == null), "chunks " + chunks.size());
            return chunks.size() + " chunks before " + e.code();
        });
    }

    static String describe(List<Citation> cs) {
        List<String> parts = new ArrayList<>();
        Set<String> seen = new HashSet<>();
        for (Citation c : cs) {
            if (seen.add(c.documentId() + c.index())) {
                parts.add("[" + c.index() + "] " + c.documentId() + (Boolean.TRUE.equals(c.cited()) ? "*" : ""));
            }
        }
        return parts.toString();
    }
}
