#!/usr/bin/env python3
# imq fuzzer, in the test VM (tests/cases/imq-fuzz.sh sets up the namespaces cli - rtr - srv of
# tests/vm/lib.sh's topo_3, a GRE and a VXLAN tunnel between cli and srv through rtr, and
# loads imq with numdevs=4).
#
# Random steps: IMQ rules in both hooks and both families (valid, and naming a device that does
# not exist, which the kernel must refuse), rules deleted, devices down, up and deleted, root
# qdiscs of every kind on the devices (tbf with a burst below a GSO packet, netem with
# duplication, reordering and loss, cake, fq_codel, sfq, htb trees, prio...), and traffic: TCP,
# multiqueue devices (numqueues at each load, numtxqueues of `ip link add`) with mq roots, UDP
# bursts of small packets, fragments, ICMP, IPv6, GRE and VXLAN through the router, traffic
# the router itself sends, multicast; attempts to unload imq while rules hold it, which must
# fail; and every rule flushed, imq unloaded (its counters must balance) and loaded again. The kernel must stay up (panic_on_warn; the host's stall watchdog, fed by a
# console beat every step). At the end every rule goes, imq unloads, and its counters balance:
# every diverted packet was reinjected, dropped in a qdisc, gone with its device or expired
# (its packet copied or segmented by a qdisc and consumed unseen). Traffic then flows.
#
#   imq_fuzz.py --seed N --secs S      prints each step; a failure prints the steps so far
import argparse
import random
import re
import subprocess
import sys
import time

from fuzzlib import console

DEVS = 4


IPERF_TIMEOUTS = "--connect-timeout 5000"


def sh(cmd, timeout=60):
    # A client's own receive timeout exists only for -R tests: the tool's timeout does the rest.
    cmd = cmd.replace("ip netns exec srv iperf3", "ip netns exec srv timeout -k 2 15 iperf3")
    cmd = cmd.replace("ip netns exec cli iperf3", "ip netns exec cli timeout -k 2 15 iperf3")
    cmd = cmd.replace("$IPERF_TIMEOUTS", IPERF_TIMEOUTS)
    p = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=timeout)
    return p.returncode, (p.stdout + p.stderr).strip()


def leaf(r):
    return r.choice([
        "pfifo limit 50", "bfifo limit 20000", "tbf rate 5mbit burst 3000 latency 50ms",
        "tbf rate 20mbit burst 64k latency 20ms", "netem duplicate 20%", "netem delay 5ms reorder 30%",
        "netem loss 10%", "netem delay 2ms 1ms", "cake bandwidth 10mbit", "cake bandwidth 5mbit split-gso",
        "fq_codel", "fq_codel limit 10", "sfq", "prio", "fq", "codel", "red limit 100000 avpkt 1000 bandwidth 10mbit",
        "htb default 10", "htb_rs default 10",
    ])


def gen(r):
    x = r.random()
    dev = r.randrange(DEVS)
    if x < 0.18:
        t = r.choice(["iptables", "ip6tables"])
        if r.random() < 0.5:
            where = f"PREROUTING -i {r.choice(['r0', 'r1'])}"
        else:
            where = f"POSTROUTING -o {r.choice(['r0', 'r1'])}"
        todev = dev if r.random() < 0.9 else r.choice([4, 7, 15])
        proto = r.choice(["", "-p udp", "-p tcp", "-p icmp" if t == "iptables" else "-p ipv6-icmp", "-p gre"])
        return f"rule ip netns exec rtr {t} -t mangle -A {where} {proto} -j IMQ --todev {todev}"
    if x < 0.25:
        t = r.choice(["iptables", "ip6tables"])
        return f"try ip netns exec rtr {t} -t mangle -D {r.choice(['PREROUTING', 'POSTROUTING'])} 1"
    if x < 0.32:
        return f"try ip link set imq{dev} {r.choice(['up', 'up', 'down'])}"
    if x < 0.335:
        return f"try ip link del imq{dev}"
    if x < 0.48:
        q = leaf(r)
        # A root of another kind cannot be replaced in place: deleted first.
        cmd = f"try tc qdisc del dev imq{dev} root 2>/dev/null; tc qdisc add dev imq{dev} root handle 1: {q}"
        if q.startswith("htb"):
            kind = q.split()[0]
            cmd += (f" && tc class add dev imq{dev} parent 1: classid 1:10 {kind} rate {r.choice(['1mbit', '10mbit', '100mbit'])}"
                    f" && tc qdisc add dev imq{dev} parent 1:10 handle 10: {leaf(r).replace('htb_rs', 'sfq').replace('htb', 'sfq')}")
        return cmd
    if x < 0.50:
        # mq (refused on a device with one queue) with leaves on its first queues.
        cmd = f"try tc qdisc del dev imq{dev} root 2>/dev/null; tc qdisc add dev imq{dev} root handle 1: mq"
        for q in range(1, r.randint(1, 4) + 1):
            cmd += f" && tc qdisc add dev imq{dev} parent 1:{q} {leaf(r).replace('htb_rs', 'sfq').replace('htb', 'sfq')}"
        return cmd
    if x < 0.52:
        return f"try tc qdisc del dev imq{dev} root"
    if x < 0.55:
        return f"unload-attempt {queues(r)}"
    if x < 0.57:
        return f"flush-reload {queues(r)}"
    if x < 0.585:
        # The router's own device (a rule in rtr then goes there, not to the initial one), with
        # the module's number of queues or its own (33 is refused).
        ntx = r.choice(["", "", "numtxqueues 2 ", "numtxqueues 8 ", "numtxqueues 33 "])
        return f"try ip -n rtr link add imq{dev} {ntx}type imq && ip -n rtr link set imq{dev} up"
    if x < 0.595:
        return f"try ip -n rtr link del imq{dev}"
    # iperf3 waits 120 s by default for a reply a lossy leaf dropped (the UDP test's first
    # datagram back, found by seed 5120512, step 342): a few seconds here, so that a step that
    # still takes 30 s means the datapath is stuck, not the tool.
    return "traffic " + r.choice([
        "ip netns exec srv iperf3 -c 10.0.1.2 -t 1 -p 5201 $IPERF_TIMEOUTS",
        "ip netns exec cli iperf3 -c 10.0.2.2 -t 1 -p 5201 $IPERF_TIMEOUTS",
        "ip netns exec srv iperf3 -c 2001:db8:1::2 -t 1 -p 5201 $IPERF_TIMEOUTS",
        "ip netns exec srv iperf3 -c 10.0.1.2 -u -b 20M -l 64 -t 1 -p 5201 $IPERF_TIMEOUTS",
        "ip netns exec cli busybox ping -c 2 -W 1 -s 3000 10.0.2.2",
        "ip netns exec cli busybox ping -6 -c 2 -W 1 -s 4000 2001:db8:2::2",
        "ip netns exec cli busybox ping -c 2 -W 1 10.9.9.2",
        "ip netns exec cli busybox ping -c 2 -W 1 10.9.8.2",
        "ip netns exec rtr busybox ping -c 2 -W 1 10.0.1.2",
        "ip netns exec rtr busybox ping -6 -c 2 -W 1 -s 2000 2001:db8:2::2",
        "ip netns exec cli busybox ping -c 2 -W 1 -t 2 224.0.0.1",
        "ip netns exec srv python3 -c \"import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); [s.sendto(b'x'*r, ('10.0.1.2', 9)) for r in range(1, 1400, 7)]\"",
    ])


def counters(line):
    return {k: int(v) for k, v in re.findall(r" ([a-z_]+) (\d+)", line)}


def unbalanced(line):
    """Why an unload line's counters do not balance, or None."""
    c = counters(line)
    need = ("diverted", "reinjected", "dropped_in_qdisc", "gone", "expired")
    if not all(k in c for k in need):
        return f"no counters line: {line}"
    if c["diverted"] != c["reinjected"] + c["dropped_in_qdisc"] + c["gone"] + c["expired"]:
        return (f"counters do not balance: diverted {c['diverted']} != reinjected {c['reinjected']}"
                f" + dropped_in_qdisc {c['dropped_in_qdisc']} + gone {c['gone']} + expired "
                f"{c['expired']}: {line}")
    return None


def unload_line():
    return sh("dmesg | grep 'imq: unloaded' | tail -n 1")[1]


def flush_unload():
    """Every IMQ rule flushed, imq unloaded (retried while the last rules release it); its
    unload line, or None if it does not unload."""
    for t in ("iptables", "ip6tables"):
        sh(f"ip netns exec rtr {t} -t mangle -F")
    for _ in range(50):
        if sh("rmmod imq")[0] == 0:
            return unload_line()
        time.sleep(0.2)
    return None


def reload(line, queues):
    """Why imq's unload LINE does not balance or imq does not load again (with QUEUES transmit
    queues a device); None if all is well."""
    if line is None:
        return "imq does not unload once the rules are gone"
    return unbalanced(line) or load(queues)


def queues(r):
    """A numqueues for a (re)load: mostly one, sometimes several (mq becomes the default root)."""
    return r.choice([1, 1, 2, 4, 32])


def load(queues):
    """imq with DEVS devices of QUEUES transmit queues, up, without IPv6 of their own, and the
    target's module xt_IMQ (as imq-lib.sh's imq_load)."""
    rc, out = sh(f"insmod /src/imq/imq.ko numdevs={DEVS} numqueues={queues}")
    if rc:
        return out
    rc, out = sh("grep -q '^xt_IMQ ' /proc/modules || "
                 "{ modprobe x_tables && insmod /src/imq/xt_IMQ.ko; }")
    if rc:
        return f"xt_IMQ: {out}"
    for d in range(DEVS):
        sh(f"echo 1 > /proc/sys/net/ipv6/conf/imq{d}/disable_ipv6; ip link set imq{d} up")
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--secs", type=float, default=60)
    a = ap.parse_args()
    r = random.Random(a.seed)
    start, i, done, problems = time.monotonic(), 0, [], []
    why = load(queues(r))
    if why:
        sys.exit(f"FAIL: imq does not load: {why}")
    while time.monotonic() - start < a.secs:
        i += 1
        step = gen(r)
        console(f"@@BEAT imq-fuzz step {i}")
        done.append(step)
        kind, _, cmd = step.partition(" ")
        if kind == "flush-reload":
            # Every rule goes (packets still queued): imq must unload, balanced, and load again.
            line = flush_unload()
            print(f"{i:5d} flushed and unloaded: {line}")
            why = reload(line, int(cmd))
            if why:
                problems.append(f"step {i}: {why}")
                break
            continue
        if kind == "unload-attempt":
            # The rules hold xt_IMQ; imq unloads under them, traffic flowing, and loads again.
            has_rules = sh("ip netns exec rtr iptables-save -t mangle | grep -q IMQ || "
                           "ip netns exec rtr ip6tables-save -t mangle | grep -q IMQ")[0] == 0
            rc, out = sh("rmmod xt_IMQ")
            if rc == 0 and has_rules:
                problems.append(f"step {i}: xt_IMQ unloaded while rules used it")
                break
            if rc != 0:
                print(f"{i:5d} xt_IMQ unload refused while rules hold it: {out}")
            rc, out = sh("rmmod imq")
            if rc != 0:
                problems.append(f"step {i}: imq does not unload: {out}")
                break
            line = unload_line()
            print(f"{i:5d} unloaded: {line}")
            why = reload(line, int(cmd))
            if why:
                problems.append(f"step {i}: {why}")
                break
            continue
        try:
            rc, out = sh(cmd, timeout=30)
        except subprocess.TimeoutExpired:
            problems.append(f"step {i}: timed out: {step}")
            # What the datapath and the traffic looked like then, to tell a stuck queue from a
            # slow exchange.
            for what in ("tc -s qdisc show | grep -A3 imq", "ip -s link show | grep -A5 imq",
                         "ip netns exec rtr iptables-save -t mangle", "ip netns exec rtr ip6tables-save -t mangle",
                         "ps -eo pid,stat,etime,args | grep -E 'iperf3|ping' | grep -v grep",
                         "ip netns exec cli ss -tuanp", "ip netns exec srv ss -tuanp",
                         "cat /proc/net/softnet_stat", "cat /proc/softirqs"):
                try:
                    print(f"--- {what}\n{sh(what, timeout=10)[1]}")
                except subprocess.TimeoutExpired:
                    print(f"--- {what}: timed out")
            break
        if kind == "rule":
            m = re.search(r"--todev (\d+)", cmd)
            if int(m.group(1)) >= DEVS and rc == 0:
                problems.append(f"step {i}: a rule for a device imq did not create was accepted: {step}")
                break
        print(f"{i:5d} rc {rc} {step}" + (f"  [{out.splitlines()[-1][:120]}]" if rc and out else ""))
    # The end: rules flushed, imq unloads, counters balance, traffic flows.
    if not problems:
        line = flush_unload()
        print(f"end: {line}")
        why = unbalanced(line) if line else "imq does not unload once the rules are gone"
        if why:
            problems.append(why)
        for _ in range(50):
            if sh("rmmod xt_IMQ")[0] == 0:
                break
            time.sleep(0.2)
        else:
            problems.append("xt_IMQ does not unload once the rules are gone")
        rc, out = sh("ip netns exec cli busybox ping -c 3 -W 2 10.0.2.2")
        if rc:
            problems.append(f"traffic does not flow after the run: {out}")
    if problems:
        print("FAIL: " + "\n".join(problems))
        print(f"--- steps (imq_fuzz.py --seed {a.seed}):")
        print("\n".join(done))
        sys.exit(1)
    print(f"PASS: {i} steps in {time.monotonic() - start:.0f}s")


if __name__ == "__main__":
    main()
