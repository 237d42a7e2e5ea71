// The orchestrator (h3co_bench MODE without --role): the jobs of a mode (all: every h3co workload;
// compare: modes/compare.hpp), run --runs times with the order rotated and reversed between runs,
// the medians, and the output (output.hpp).
#pragma once

#include "modes/compare.hpp"
#include "output.hpp"
#include "run.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

namespace bench {

inline int orchestrate(config c) {
    if (c.mode == "flood") return run_flood(c);
    if (c.tmpdir.empty()) c.tmpdir = std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp";
    if (!fs::exists(c.cert_dir + "/ca.pem")) {
        std::cerr << "h3co_bench: no certificates in " << c.cert_dir << " (cmake/make-certs.sh DIR, then --cert-dir DIR)\n";
        return 2;
    }
    std::vector<std::vector<job>> rounds;  // one round per run; pairs alternate between rounds
    std::vector<job> base;
    if (c.mode == "compare") {
        base = compare_jobs(c);
        if (!compare_peers_found(c, base)) return 2;
    } else if (c.mode == "all") {
        for (const char* w : {"upload", "download", "parallel", "clients", "chunks", "handshakes"}) base.push_back({w, "h3co", "h3co"});
    } else {
        base.push_back({c.mode, "h3co", "h3co"});
    }
    for (int run = 0; run < c.runs; ++run) {
        std::vector<job> round = base;
        // Alternate: each run starts at a different pair, and every other run goes backwards.
        if (!round.empty()) std::rotate(round.begin(), round.begin() + static_cast<std::ptrdiff_t>(run % round.size()), round.end());
        if (run % 2) std::reverse(round.begin(), round.end());
        rounds.push_back(round);
    }
    const std::string upload_file = c.tmpdir + "/h3co_bench_upload.bin";
    const bool gtls_upload = std::any_of(base.begin(), base.end(), [](const job& j) { return j.client == "gtls" && j.workload == "upload"; });
    if (gtls_upload) {
        std::ofstream out(upload_file, std::ios::binary | std::ios::trunc);
        const auto& data = payload(1 << 20);
        for (std::uint64_t left = c.bytes; left > 0;) {
            const auto k = std::min<std::uint64_t>(left, data.size());
            out.write(data.data(), static_cast<std::streamsize>(k));
            left -= k;
        }
        if (!out) {
            std::cerr << "h3co_bench: cannot write " << upload_file << '\n';
            return 2;
        }
    }

    std::vector<row> all;
    for (int run = 0; run < c.runs; ++run) {
        for (const auto& j : rounds[static_cast<std::size_t>(run)]) {
            if (c.format == "table") std::fprintf(stderr, "run %d/%d: %s %s -> %s ...\n", run + 1, c.runs, j.workload.c_str(), j.client.c_str(), j.server.c_str());
            all.push_back(run_pair(c, j.workload, j.client, j.server, run + 1));
            if (c.format == "table" && !all.back().ok) std::fprintf(stderr, "  failed: %s\n", all.back().error.c_str());
        }
    }
    if (gtls_upload) std::remove(upload_file.c_str());

    std::vector<row> medians;
    for (const auto& j : base) {
        std::vector<row> same;
        for (const auto& r : all)
            if (r.workload == j.workload && r.client == j.client && r.server == j.server) same.push_back(r);
        medians.push_back(median_row(same));
    }
    const auto ratios = c.mode == "compare" ? compare_ratios(c, medians) : std::vector<std::pair<std::string, double>>{};

    if (c.format == "csv") {
        print_csv_header();
        for (const auto& r : all) print_csv(r, "run");
        for (const auto& r : medians) print_csv(r, "median");
        for (const auto& [name, v] : ratios) std::cout << "ratio," << name << ",,,,,,,," << fmt(v, 3) << ",,,,,,,\n";
    } else if (c.format == "json") {
        std::cout << "[\n";
        bool first = true;
        auto emit = [&](const json_record& j) {
            std::cout << (first ? "  " : ",\n  ") << j.dump();
            first = false;
        };
        for (const auto& r : all) emit(to_json(r, "run"));
        for (const auto& r : medians) emit(to_json(r, "median"));
        for (const auto& [name, v] : ratios) {
            json_record j;
            j.set("kind", "ratio");
            j.set("name", name);
            j.set("value", v);
            emit(j);
        }
        std::cout << "\n]\n";
    } else {
        std::printf("h3co_bench %s: %s body, %d run(s)%s; MB/s = 10^6 body bytes/s\n", c.mode.c_str(),
                    (fmt(static_cast<double>(c.bytes) / (1 << 20), 0) + " MiB").c_str(), c.runs,
                    c.runs > 1 ? ", medians of the successful runs" : "");
        print_table(medians);
        if (c.runs > 1) {
            std::printf("\nper run:\n");
            print_table(all);
        }
        print_server_cost(medians, c.runs > 1 ? "medians" : "one run");
        if (!ratios.empty()) {
            std::printf("\nratios (medians):\n");
            for (const auto& [name, v] : ratios) std::printf("  %-44s %s\n", name.c_str(), fmt(v, 2).c_str());
        }
        print_connection_stats(all);
        if (c.link.given) print_link_runs(c, all);
    }
    const bool ok = std::all_of(medians.begin(), medians.end(), [](const row& r) { return r.ok; });
    return ok ? 0 : 1;
}

}  // namespace bench
