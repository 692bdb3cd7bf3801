package io.ragserve.client.check;

import static io.ragserve.client.check.Checks.check;
import static io.ragserve.client.check.Checks.clip;
import static io.ragserve.client.check.Checks.expect;

import io.ragserve.client.BadRequestException;
import io.ragserve.client.NotFoundException;
import io.ragserve.client.RagserveClient;
import io.ragserve.client.rca.Alert;
import io.ragserve.client.rca.AlertmanagerWebhook;
import io.ragserve.client.rca.AnalysisPage;
import io.ragserve.client.rca.AnalysisQuery;
import io.ragserve.client.rca.EvidenceRef;
import io.ragserve.client.rca.Hypothesis;
import io.ragserve.client.rca.RcaAnalysis;
import io.ragserve.client.rca.RcaEvidence;
import io.ragserve.client.rca.RcaOptions;
import io.ragserve.client.rca.RcaRequest;
import io.ragserve.client.rca.RunbookCitation;
import io.ragserve.client.rca.StoredAnalysis;
import io.ragserve.client.rca.WebhookResult;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;

/** The RCA suite: analyses (whole and streamed), the Alertmanager webhook and stored analyses. */
final class RcaCheck {
    private static final Set<String> SEVERITIES = Set.of("critical", "warning", "info", "unknown");
    private static final Set<String> KINDS = Set.of("runbook", "log", "metric", "trace", "change");

    private RcaCheck() {}

    static void run(RagserveClient client, Checks checks) {
        String run = UUID.randomUUID().toString().substring(0, 8); // fresh fingerprints on every run
        Map<String, String> crashAnnotations = Map.of(
                "summary", "Pod shop/cart-7d9f is crash looping",
                "description", "Pod shop/cart-7d9f (container cart) is restarting 5 times / 10 minutes.");
        Alert crash = Alert.firing(Map.of("alertname", "KubePodCrashLooping", "namespace", "shop",
                "pod", "cart-7d9f", "severity", "warning", "run", run), crashAnnotations);
        String log = "2026-11-23T09:59:58Z cart: FATAL config key PAYMENT_URL is not set";
        String[] analysisId = new String[1];

        checks.run("rca: analysis with verified evidence", () -> {
            RcaEvidence evidence = RcaEvidence.logs(log).withChanges(List.of(
                    new RcaEvidence.Change("cart v2.3.1 rolled out", "CH-42", null, "deploy", null)));
            RcaAnalysis a = client.rca(RcaRequest.of(crash).withEvidence(evidence).withCollection("default"));
            check("rca.analysis".equals(a.object()) && a.id() != null, "object/id " + a.object() + " " + a.id());
            check(!a.summary().isBlank() && SEVERITIES.contains(a.severity()), "summary/severity " + a.severity());
            check(!a.runbooks().isEmpty(), "no runbooks retrieved");
            check(a.runbooks().get(0).documentId().equals("runbooks/kube-pod-crashlooping.md"),
                    "top runbook " + a.runbooks().get(0).documentId());
            verifyAnalysis(a, 1, 1);
            check("KubePodCrashLooping".equals(a.alert().alertname()) && a.alert().fingerprint() != null,
                    "alert " + a.alert());
            check(a.usage() != null && a.usage().completionTokens() > 0 && a.latencyMs() > 0, "usage/latency");
            analysisId[0] = a.id();
            return a.severity() + " \"" + clip(a.summary(), 60) + "\" " + describe(a);
        });

        checks.run("rca: stored analysis by id", () -> {
            StoredAnalysis s = client.analysis(analysisId[0]);
            check("completed".equals(s.status()) && "api".equals(s.source()), "status/source " + s.status()
                    + " " + s.source());
            check(s.result() != null && analysisId[0].equals(s.result().id()), "result");
            check("rca.stored_analysis".equals(s.object()) && "default".equals(s.collection()), "object " + s);
            return s.id() + " " + s.status() + " via " + s.source() + ", created " + s.createdAt();
        });

        checks.run("rca: streamed analysis", () -> {
            List<String> types = new ArrayList<>();
            StringBuilder deltas = new StringBuilder();
            RcaAnalysis a = client.rcaStream(RcaRequest.of(crash.withFingerprint("java-stream-" + run))
                    .withEvidence(RcaEvidence.logs(log))
                    .withOptions(RcaOptions.defaults().withMaxHypotheses(1).withTopK(2)))
                    .result(e -> {
                        types.add(e.type());
                        if (e.delta() != null) {
                            deltas.append(e.delta());
                        }
                    });
            check("retrieval".equals(types.get(0)), "first event " + types.get(0));
            check("result".equals(types.get(types.size() - 1)), "last event " + types.get(types.size() - 1));
            check(types.contains("analysis_done") && types.indexOf("analysis_done") < types.size() - 1,
                    "analysis_done before result: " + types);
            check(types.contains("analysis_delta") && deltas.length() > 0, "no analysis deltas");
            verifyAnalysis(a, 1, 0);
            // (runbooks may exceed top_k: the server adds passages of the best runbook, rca.expand_chunks)
            check(a.hypotheses().size() <= 1, "options.max_hypotheses=1 not applied: " + describe(a));
            check("completed".equals(client.analysis(a.id()).status()), "stream result not stored");
            long nDeltas = types.stream().filter("analysis_delta"::equals).count();
            return types.size() + " events (" + nDeltas + " deltas), " + describe(a);
        });

        checks.run("rca: webhook, dedup, listing, resolve", () -> {
            Alert oom = Alert.firing(Map.of("alertname", "KubeContainerOOMKilled", "namespace", "shop",
                    "pod", "cart-7d9f", "severity", "critical", "run", run),
                    Map.of("summary", "Container cart in shop/cart-7d9f was OOMKilled (exit code 137)"));
            AlertmanagerWebhook group = AlertmanagerWebhook.of("{}:{alertname=\"KubeContainerOOMKilled\"}",
                    "ragserve", List.of(oom));
            WebhookResult first = client.alertmanagerWebhook(group, "default");
            check("rca.webhook_result".equals(first.object()) && first.alerts().size() == 1, "webhook " + first);
            WebhookResult.AlertResult queued = first.alerts().get(0);
            check("queued".equals(queued.action()) && queued.analysisId() != null, "first post " + queued);
            WebhookResult again = client.alertmanagerWebhook(group, "default");
            check("duplicate".equals(again.alerts().get(0).action())
                    && queued.analysisId().equals(again.alerts().get(0).analysisId()), "second post " + again);
            StoredAnalysis s = client.awaitAnalysis(queued.analysisId(), Duration.ofMinutes(5));
            check("completed".equals(s.status()), "webhook analysis " + s.status() + " " + s.error());
            check("webhook".equals(s.source()) && s.result() != null, "source " + s.source());
            check(s.result().runbooks().stream().anyMatch(r -> r.documentId().equals("runbooks/pod-oomkilled.md")),
                    "runbooks " + describe(s.result()));
            verifyAnalysis(s.result(), 1, 0);
            AnalysisPage page = client.analyses(AnalysisQuery.all().alertname("KubeContainerOOMKilled")
                    .status("completed").limit(5));
            check(page.data().stream().anyMatch(x -> x.id().equals(s.id())) && page.total() >= 1, "listing " + page);
            check(page.data().stream().allMatch(x -> x.alertname().equals("KubeContainerOOMKilled")), "filter");
            WebhookResult resolved = client.alertmanagerWebhook(
                    AlertmanagerWebhook.of(group.groupKey(), "ragserve", List.of(oom.resolved())), "default");
            check("resolved".equals(resolved.alerts().get(0).action()), "resolve " + resolved);
            StoredAnalysis after = client.analysis(s.id());
            check("resolved".equals(after.alertStatus()) && after.resolvedAt() != null, "after resolve " + after);
            return "queued -> duplicate -> " + s.status() + " -> resolved; listed " + page.data().size() + " of "
                    + page.total() + "; " + describe(s.result());
        });

        checks.run("rca: paging and errors", () -> {
            AnalysisPage p1 = client.analyses(AnalysisQuery.all().limit(1));
            check(p1.data().size() == 1 && p1.total() >= 3 && p1.hasMore() && p1.nextCursor() != null, "page " + p1);
            AnalysisPage p2 = client.analyses(AnalysisQuery.all().limit(1).cursor(p1.nextCursor()));
            check(p2.data().size() == 1 && !p2.data().get(0).id().equals(p1.data().get(0).id()), "page 2 " + p2);
            NotFoundException nf = expect(NotFoundException.class, () -> client.analysis("rca_does_not_exist"));
            check("analysis_not_found".equals(nf.code()), "unknown id " + nf);
            BadRequestException bad = expect(BadRequestException.class, () -> client.rca(
                    RcaRequest.of(Alert.firing(Map.of("namespace", "shop"), Map.of()))));
            check(bad.param() != null && bad.param().startsWith("alert.labels"), "no alertname " + bad);
            NotFoundException col = expect(NotFoundException.class, () ->
                    client.rca(RcaRequest.of(crash).withCollection("no-such-collection")));
            check("collection_not_found".equals(col.code()), "collection " + col);
            BadRequestException cur = expect(BadRequestException.class, () ->
                    client.analyses(AnalysisQuery.all().cursor("not-a-cursor")));
            check("invalid_cursor".equals(cur.code()), "cursor " + cur);
            return "total " + p1.total() + "; 404 " + nf.code() + " / " + col.code() + "; 400 param " + bad.param()
                    + " / " + cur.code();
        });
    }

    /** Evidence refs name things that were really there: runbooks retrieved, logs/changes supplied. */
    private static void verifyAnalysis(RcaAnalysis a, int logs, int changes) {
        check(a.hypotheses() != null && a.missingData() != null, "hypotheses/missing_data present");
        for (int i = 0; i < a.runbooks().size(); i++) {
            RunbookCitation r = a.runbooks().get(i);
            check(r.index() == i + 1 && r.ref().equals("runbook:" + (i + 1)) && !r.text().isBlank(), "runbook " + r);
        }
        for (Hypothesis h : a.hypotheses()) {
            check(!h.title().isBlank() && h.confidence() >= 0 && h.confidence() <= 1, "hypothesis " + h.title());
            for (EvidenceRef e : h.evidence()) {
                check(KINDS.contains(e.kind()) && e.ref().startsWith(e.kind() + ":") && !e.excerpt().isBlank(),
                        "evidence " + e);
                int n = Integer.parseInt(e.ref().substring(e.ref().indexOf(':') + 1));
                int bound = switch (e.kind()) {
                    case "runbook" -> a.runbooks().size() + 1;
                    case "log" -> logs;
                    case "change" -> changes;
                    default -> 0;
                };
                check(e.kind().equals("runbook") ? n >= 1 && n < bound : n >= 0 && n < bound,
                        "evidence ref " + e.ref() + " names nothing supplied or retrieved");
            }
        }
    }

    private static String describe(RcaAnalysis a) {
        List<String> hs = a.hypotheses().stream()
                .map(h -> "\"" + clip(h.title(), 40) + "\"@" + String.format("%.2f", h.confidence())
                        + h.evidence().stream().map(EvidenceRef::ref).toList())
                .toList();
        return "hypotheses=" + hs + " runbooks=" + a.runbooks().stream().map(RunbookCitation::documentId).toList()
                + " missing=" + a.missingData().size();
    }
}
