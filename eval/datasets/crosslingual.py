# ruff: noqa: E501  (the hand-written query tables read best one pair per line)
"""Cross-lingual retrieval queries (issue 21), hand-written, over ../shared/data (read at run time).

    .venv/bin/python -m eval.datasets.crosslingual --runbooks ../shared/data/runbooks-openshift \
        --cmrc ../shared/data/cmrc2018/cmrc2018_trial.json --out DIR

writes into DIR (outside the repository; nothing from the data is copied):
- `queries_zh_en.jsonl`: questions in Chinese about the English OpenShift runbooks, as an operator
  would type them (product names such as Ceph, etcd or virt-operator kept in Latin letters, the way
  they are written in Chinese chat); one per runbook, every fourth runbook in path order, alert
  names left out. Document ids are paths relative to the runbooks directory;
- `queries_en_zh.jsonl`: questions in English about the Chinese CMRC 2018 trial contexts (every
  fourth context in file order); names are given in their usual English form, not in Chinese.
  Document ids are the CMRC context ids (`ragserve eval convert cmrc` writes the matching corpus);
- `*_tune.jsonl` / `*_heldout.jsonl`: each set split in two by `tune_split` (a hash of the document
  id). The split was fixed and committed before any measurement with these queries: choices are
  made on the tuning halves, and only the held-out halves are reported as results.
Every record carries `"language"` (the query's), so `ragserve eval retrieval` breaks results down by it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from eval.convert import convert_squad
from eval.data import write_jsonl
from eval.datasets.runbooks import tune_split

# (runbook path relative to runbooks-openshift/, question in Chinese); alert names left out.
ZH_EN: tuple[tuple[str, str], ...] = (
    ("advanced-cluster-management-operator/ACMMetricsCollectorFederationError.md", "ACM 的指标采集器从集群自带的 Prometheus 联邦抓取指标时一直返回 401 或 403"),
    ("advanced-cluster-management-operator/ACMUWLMetricsCollectorFederationError.md", "Hub 集群上用户工作负载的 Prometheus 被 ACM 联邦抓取时大量报 500 错误"),
    ("cluster-etcd-operator/etcdGRPCReadRequestsSlow.md", "etcd 读请求的 gRPC 延迟 p99 很高，读操作变得很慢"),
    ("cluster-etcd-operator/etcdHighNumberOfFailedGRPCRequests.md", "过去十分钟里 etcd 有一半的 gRPC 请求都失败了"),
    ("cluster-etcd-operator/etcdSignerCAExpirationCritical.md", "etcd 的签发 CA 证书只剩一年就要过期了"),
    ("cluster-kube-apiserver-operator/ExtremelyHighIndividualControlPlaneCPU.md", "某一个控制平面节点的 CPU 使用率长时间居高不下"),
    ("cluster-kube-controller-manager-operator/GarbageCollectorSyncFailed.md", "垃圾回收器的 informer 缓存同步失败，可能是某个 CRD 的转换 webhook 坏了"),
    ("cluster-kube-descheduler-operator/DeschedulerPSIDisabled.md", "重调度器用了需要 PSI 指标的配置，可是工作节点上没有开启 PSI"),
    ("cluster-logging-operator/ClusterLogForwarderOutputErrorRate.md", "日志采集器往某个输出端转发日志时持续出错，错误率超过百分之十"),
    ("cluster-monitoring-operator/AlertmanagerFailedReload.md", "Alertmanager 重新加载配置一直失败"),
    ("cluster-monitoring-operator/ClusterOperatorDown.md", "有个集群 Operator 很长时间都不是可用状态"),
    ("cluster-monitoring-operator/KubeJobFailed.md", "任务重试次数超过了 backoffLimit 还是失败"),
    ("cluster-monitoring-operator/KubePodNotReady.md", "Pod 一直在运行，但始终没有进入就绪状态"),
    ("cluster-monitoring-operator/NodeFilesystemAlmostOutOfFiles.md", "节点文件系统的 inode 快用完了"),
    ("cluster-monitoring-operator/NodeRAIDDegraded.md", "节点上的磁盘阵列因为有硬盘坏了处于降级状态"),
    ("cluster-monitoring-operator/PrometheusPossibleNarrowSelectors.md", "PromQL 查询里对直方图 le 标签的选择器可能写得太窄，匹配不到数据"),
    ("cluster-monitoring-operator/PrometheusTargetSyncFailure.md", "Prometheus 实例同步抓取目标的配置一直失败"),
    ("cluster-monitoring-operator/ThanosRuleRuleEvaluationLatencyHigh.md", "Thanos Ruler 处理规则组太慢，漏掉了用户自定义规则的评估"),
    ("cluster-network-operator/NoRunningOvnMaster.md", "OVN-Kubernetes 主控平面的 Pod 一个都没有在运行"),
    ("cluster-network-operator/OVNKubernetesNorthdInactive.md", "某个可用域里没有处于活动状态的 OVN northd 实例"),
    ("cluster-openshift-apiserver-operator/ImageStreamImportFailed.md", "ImageStream 最近十分钟导入新的镜像标签失败"),
    ("machine-config-operator/HighOverallControlPlaneMemory.md", "所有控制平面节点加起来的内存使用率超过了百分之六十"),
    ("machine-config-operator/MachineConfigControllerPoolAlert.md", "有节点同时属于 master 池和自定义池，结果只应用了 master 的机器配置"),
    ("machine-config-operator/SystemMemoryExceedsReservation.md", "系统守护进程占用的内存超过了 kubelet 给它预留的内存"),
    ("network-observability-operator/ExternalIngressHighTrend.md", "来自集群外部网络的入站流量比以往的基线明显增加"),
    ("network-observability-operator/LatencyHighTrend.md", "网络可观测性发现 TCP 往返时延比历史基线明显升高"),
    ("network-observability-operator/PacketDropsByDevice.md", "网卡设备层面丢包率很高，可能是硬件或驱动的问题"),
    ("openshift-container-storage-operator/CephClusterErrorState.md", "存储集群处于错误状态已经超过十分钟"),
    ("openshift-container-storage-operator/CephDataRecoveryTakingTooLong.md", "Ceph 的数据恢复进行得特别慢，很久都没完成"),
    ("openshift-container-storage-operator/CephMdsCPUUsageHighNeedsVerticalScaling.md", "MDS 守护进程的 CPU 使用率太高，需要给它多分配 CPU"),
    ("openshift-container-storage-operator/CephMgrIsAbsent.md", "Prometheus 的目标发现里找不到 Ceph 管理器了"),
    ("openshift-container-storage-operator/CephMonQuorumAtRisk.md", "存储集群剩下的 mon 太少，仲裁可能保不住"),
    ("openshift-container-storage-operator/CephOSDCriticallyFull.md", "后端存储设备的使用率超过了百分之八十，需要马上清理空间或者扩容"),
    ("openshift-container-storage-operator/CephOSDFlapping.md", "OSD 五分钟内重启了十次，反复上线下线"),
    ("openshift-container-storage-operator/CephPgRepairTakingTooLong.md", "Ceph 的自我修复操作花的时间太长了"),
    ("openshift-container-storage-operator/ClusterObjectStoreState.md", "对象存储的 RGW 端点出故障了，或者 RGW 的副本没有就绪"),
    ("openshift-container-storage-operator/NooBaaSystemCapacityWarning85.md", "NooBaa 的后端存储总容量已经用掉了百分之八十五"),
    ("openshift-container-storage-operator/ODFNodeLatencyHighOnNonOSDNodes.md", "到 MON、MGR 这些不存数据的节点的 ICMP 延迟超过了一百毫秒"),
    ("openshift-container-storage-operator/ODFOperatorNotUpgradeable.md", "ODF Operator 被标记成不可升级，没法升到下一个版本"),
    ("openshift-container-storage-operator/ObcQuotaBytesAlert.md", "某个对象存储桶声明的字节配额已经用了八成"),
    ("openshift-container-storage-operator/OdfMirrorDaemonStatus.md", "镜像守护进程不健康，整个集群的灾备复制都失效了"),
    ("openshift-container-storage-operator/StorageAutoScalerCRIsInvalid.md", "存储自动扩容器遇到了不支持或者无效的存储类配置"),
    ("openshift-container-storage-operator/StorageClientIncompatibleOperatorVersion.md", "客户端集群上的 OCS 客户端 Operator 版本和提供方的 OCS Operator 版本不一致"),
    ("openshift-container-storage-operator/helpers/checkOperator.md", "怎么检查 OCS Operator 的订阅状态和它的 Pod 是否健康"),
    ("openshift-container-storage-operator/helpers/gatherLogs.md", "怎么用 must-gather 收集 ODF 的日志"),
    ("openshift-container-storage-operator/helpers/troubleshootCeph.md", "排查 Ceph 集群问题常用的命令有哪些"),
    ("openshift-virtualization-operator/CDIDefaultStorageClassDegraded.md", "默认存储类既不支持智能克隆，也不支持 ReadWriteMany 访问模式"),
    ("openshift-virtualization-operator/CDIOperatorDown.md", "负责导入虚拟机磁盘数据的 CDI Operator 挂了"),
    ("openshift-virtualization-operator/CnaoNmstateMigration.md", "检测到有 kubernetes-nmstate 部署，但是没有安装 NMState Operator"),
    ("openshift-virtualization-operator/GuestVCPUQueueHighCritical.md", "虚拟机里面 CPU 运行队列长度超过 20，CPU 争用非常严重"),
    ("openshift-virtualization-operator/HCOGoldenImageWithNoSupportedArchitecture.md", "异构集群里的黄金镜像模板缺少 CPU 架构的注解"),
    ("openshift-virtualization-operator/HCOOperatorConditionsUnhealthy.md", "HCO 的状态条件或者它的次级资源处于错误或警告状态"),
    ("openshift-virtualization-operator/HighCPUWorkload.md", "某个节点的 CPU 使用率超过百分之九十已经五分钟了"),
    ("openshift-virtualization-operator/KubeVirtVMGuestMemoryAvailableLow.md", "虚拟机客户操作系统的可用内存不到百分之三，快要内存溢出了"),
    ("openshift-virtualization-operator/KubemacpoolMACCollisionDetected.md", "好几个正在运行的工作负载用了同一个 MAC 地址"),
    ("openshift-virtualization-operator/LowReadyVirtControllersCount.md", "virt-controller 的 Pod 在运行，但是过去十分钟里不是全部都就绪"),
    ("openshift-virtualization-operator/LowVirtControllersCount.md", "virt-controller 的 Pod 数量太少，保证不了高可用"),
    ("openshift-virtualization-operator/NoLeadingVirtOperator.md", "virt-operator 的 Pod 都就绪了，但是十分钟内没有一个拿到 leader 租约"),
    ("openshift-virtualization-operator/NoReadyVirtOperator.md", "十分钟内没有检测到任何就绪状态的 virt-operator Pod"),
    ("openshift-virtualization-operator/OutdatedVirtualMachineInstanceWorkloads.md", "控制平面升级 24 小时以后，还有虚拟机跑在旧版本的 virt-launcher Pod 里"),
    ("openshift-virtualization-operator/SSPFailingToReconcile.md", "SSP Operator 在运行，但是调和循环反复失败"),
    ("openshift-virtualization-operator/SingleStackIPv6Unsupported.md", "在纯 IPv6 单栈的集群上安装虚拟化不被支持"),
    ("openshift-virtualization-operator/VMStorageClassWarning.md", "Windows 虚拟机用 ODF 的 rbd 存储时出现 bad crc/signature 错误"),
    ("openshift-virtualization-operator/VirtControllerDown.md", "十分钟内一个 virt-controller Pod 都没有在运行"),
    ("openshift-virtualization-operator/VirtHandlerDown.md", "每个节点上负责虚拟机生命周期和网络配置的 virt-handler 没有在运行"),
    ("openshift-virtualization-operator/VirtOperatorDown.md", "十分钟内没有检测到处于 Running 状态的 virt-operator Pod"),
    ("openshift-virtualization-operator/VirtualMachineInstanceHasEphemeralHotplugVolume.md", "虚拟机实例里有临时的热插拔卷，重启虚拟机以后就没了"),
)  # fmt: skip

# (CMRC 2018 trial context id, question in English); names in their usual English form.
EN_ZH: tuple[tuple[str, str], ...] = (
    ("TRIAL_598", "which samurai was a cousin of Tokugawa Ieyasu and the eighth head of the Nagasawa Matsudaira family"),
    ("TRIAL_632", "the third Blue Beetle in DC Comics, a teenager living with his family in El Paso, Texas"),
    ("TRIAL_566", "men's 100 metres at the 2008 Beijing Olympics, won by Usain Bolt in world record time"),
    ("TRIAL_282", "Morecambe football club promoted to the Football League for the first time in 2007"),
    ("TRIAL_861", "a clothing-optional cycling protest against dependence on oil"),
    ("TRIAL_422", "empress of Emperor Xiaowu of Jin, daughter of Wang Yun from Taiyuan"),
    ("TRIAL_541", "direct subsidy senior secondary school in Causeway Bay, the first one on Hong Kong Island"),
    ("TRIAL_794", "Kengtung, main town of eastern Shan State in Myanmar near the borders of China, Laos and Thailand"),
    ("TRIAL_300", "ellipsoidal coordinates, a three-dimensional orthogonal coordinate system"),
    ("TRIAL_641", "karst cave in Wulong, Chongqing, the first cave in China listed as a World Natural Heritage site"),
    ("TRIAL_890", "the narrow coastal pass where 300 Spartans fought the Persians in 480 BC"),
    ("TRIAL_549", "West China Hospital of Sichuan University in Chengdu, the largest single-site hospital in the world"),
    ("TRIAL_455", "book by Evelyn Beatrice Hall about Voltaire, source of 'I disapprove of what you say'"),
    ("TRIAL_658", "San Carlo alle Quattro Fontane church in Rome designed by Borromini"),
    ("TRIAL_984", "South African airport nicknamed the ten-minute airport, formerly named after Verwoerd"),
    ("TRIAL_126", "1984 Studio Pierrot robot anime later adapted in the US as Saber Rider and the Star Sheriffs"),
    ("TRIAL_575", "prism in geometry: a polyhedron with two parallel bases and rectangular side faces"),
    ("TRIAL_345", "Vietnam's second largest private commercial bank, headquartered in Ho Chi Minh City"),
    ("TRIAL_221", "French poet born in Montevideo, Uruguay, orphaned as a baby, who kept away from surrealism"),
    ("TRIAL_880", "herbal tea shops in 1960s Hong Kong that had jukeboxes and were places to socialise"),
    ("TRIAL_420", "Théodore de Banville, French poet born in Moulins, son of a naval officer"),
    ("TRIAL_426", "IBM microprocessor from 2007, the first with decimal floating point in hardware"),
    ("TRIAL_951", "Chinese centre-back footballer who moved from Liaoning to Beijing Guoan in 2007 for a record fee"),
    ("TRIAL_563", "small city on Lake Superior in Bayfield County, Wisconsin, that once had a DuPont explosives plant"),
    ("TRIAL_274", "Gtk# library binding GTK+ to .NET for writing GNOME applications with Mono"),
    ("TRIAL_827", "Hong Kong Open badminton championships held since 1982"),
    ("TRIAL_574", "crossword puzzle with a grid of black and white squares"),
    ("TRIAL_893", "the 1965 House of Councillors election in Japan, the first under Prime Minister Sato"),
    ("TRIAL_987", "Partnach Gorge near Garmisch-Partenkirchen in Bavaria"),
    ("TRIAL_959", "Baekje general who fought the Tang and Silla alliance and was killed by Prince Buyeo Pung"),
    ("TRIAL_99", "Mr. Fighting, a 20-episode Taiwanese TV drama broadcast on TTV in 2005"),
    ("TRIAL_286", "acetamide, the amide derived from acetic acid, used as a plasticizer"),
    ("TRIAL_268", "2007 Konami anime about three girls working for a detective, with tarot card magic"),
    ("TRIAL_303", "Cáceres, a Spanish city founded by the Romans, with the largest municipal area in Spain"),
    ("TRIAL_90", "Chang Yu-sheng's sixth Mandarin album, recorded live with a string quartet"),
    ("TRIAL_803", "Singaporean singer Kelly Poon, former Singapore Airlines stewardess who won Project SuperStar"),
    ("TRIAL_645", "Shougang, the Beijing state-owned steel group founded in 1919 as the Shijingshan iron works"),
    ("TRIAL_363", "fishing harbour in Toucheng, Yilan, Taiwan, used for whale watching"),
    ("TRIAL_477", "Nintendo 64DD, the magnetic disk drive add-on for the N64"),
    ("TRIAL_193", "Sunda pangolin of Southeast Asian forests that eats ants and termites"),
    ("TRIAL_163", "former deputy privacy commissioner in Hong Kong convicted of fraud over travel allowances"),
    ("TRIAL_701", "a smart Cangjie input method where you type only the codes you know"),
    ("TRIAL_202", "Blumea plant of the daisy family growing from India to Taiwan at 400 to 800 metres altitude"),
    ("TRIAL_203", "annual herb of the Blumea genus whose lower leaves have long stalks"),
    ("TRIAL_718", "Aqua Marine, a private housing estate in Cheung Sha Wan, West Kowloon, built by Hang Lung"),
    ("TRIAL_284", "1984 TTV war drama, the first war action series produced in Taiwan"),
    ("TRIAL_295", "Sunday morning cartoon slot on Taiwan Television in the 1980s"),
    ("TRIAL_245", "the first season of the Singaporean singing contest Project SuperStar in 2005"),
    ("TRIAL_777", "Isha Upanishad, one of the shortest Upanishads, with only 17 or 18 verses"),
    ("TRIAL_326", "Norway lobster, an orange-pink crustacean of the north-east Atlantic"),
    ("TRIAL_540", "a one-way street in the old Jordan Valley estate in Kowloon"),
    ("TRIAL_20", "Nasushiobara railway station in Tochigi on the Tohoku Shinkansen"),
    ("TRIAL_929", "river in Tibet called Kyi Chu in Tibetan, rising in the Nyenchen Tanglha mountains"),
    ("TRIAL_582", "the battle of 1589 in which Date Masamune defeated the Ashina and Satake"),
    ("TRIAL_741", "Japanese comedian born in 1974 who performed short comedy sketches on a TV show"),
    ("TRIAL_556", "horned melon from the Kalahari desert, also called kiwano"),
    ("TRIAL_616", "Dutch swimmer who held the 50 metre freestyle world record"),
    ("TRIAL_789", "Saudi city in the Eastern Province at the centre of the oil industry, with a port on the Persian Gulf"),
    ("TRIAL_699", "diuretic drug used for oedema from heart failure and for high blood pressure"),
    ("TRIAL_161", "the weeping prophet of the Old Testament"),
    ("TRIAL_110", "JNR 211 series DC suburban electric multiple unit introduced in 1985"),
    ("TRIAL_860", "public senior high school in Daxi, Taoyuan, that first admitted students in 2009"),
    ("TRIAL_334", "54-storey skyscraper in Minneapolis built in 1988, formerly Norwest Center"),
    ("TRIAL_141", "reductive group in mathematics, an algebraic group whose unipotent radical is trivial"),
)  # fmt: skip

SETS = {"zh_en": ("zh", ZH_EN), "en_zh": ("en", EN_ZH)}


def _cmrc_context_ids(path: Path) -> set[str]:
    """Document ids of a CMRC 2018 file as `ragserve eval convert cmrc` writes them."""
    corpus, _queries = convert_squad(path)
    return {str(c["id"]) for c in corpus}


def records(name: str) -> list[dict[str, Any]]:
    """One query set as JSONL records, in table order."""
    language, table = SETS[name]
    return [
        {"id": f"{name}-{i:03d}", "query": q, "relevant": [rel], "language": language}
        for i, (rel, q) in enumerate(table)
    ]


def split(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(tuning half, held-out half) by a hash of each query's document id."""
    tune = [r for r in rows if tune_split(str(r["relevant"][0]))]
    return tune, [r for r in rows if not tune_split(str(r["relevant"][0]))]


def build(runbooks: Path, cmrc: Path) -> dict[str, list[dict[str, Any]]]:
    """Query sets by name; FileNotFoundError when the data is absent, ValueError on a stale id."""
    if not runbooks.is_dir():
        raise FileNotFoundError(f"{runbooks} is not a directory")
    if not cmrc.is_file():
        raise FileNotFoundError(f"{cmrc} is not a file")
    known = {"zh_en": {p.relative_to(runbooks).as_posix() for p in runbooks.rglob("*.md")}}
    known["en_zh"] = _cmrc_context_ids(cmrc)
    out: dict[str, list[dict[str, Any]]] = {}
    for name in SETS:
        rows = records(name)
        missing = [r["relevant"][0] for r in rows if r["relevant"][0] not in known[name]]
        if missing:
            raise ValueError(f"{name}: documents not in the data: {', '.join(missing[:5])}")
        tune, heldout = split(rows)
        out[name], out[f"{name}_tune"], out[f"{name}_heldout"] = rows, tune, heldout
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m eval.datasets.crosslingual", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--runbooks", type=Path, required=True, help="../shared/data/runbooks-openshift")
    ap.add_argument("--cmrc", type=Path, required=True, help="../shared/data/cmrc2018/cmrc2018_trial.json")
    ap.add_argument("--out", type=Path, required=True, help="output directory (outside the repository)")
    args = ap.parse_args(argv)
    try:
        sets = build(args.runbooks, args.cmrc)
    except (OSError, ValueError, KeyError) as exc:
        print(f"eval.datasets.crosslingual: error: {exc}", file=sys.stderr)
        return 1
    for name, rows in sets.items():
        path = args.out / f"queries_{name}.jsonl"
        print(f"{path}: {write_jsonl(path, rows)} queries")
    return 0


if __name__ == "__main__":
    sys.exit(main())
