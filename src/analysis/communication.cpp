#include "lenz/communication.h"

#include <cctype>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "lenz/error.h"
#include "lenz/shape.h"

namespace lenz {

CommunicationCost communication_cost(const Model& model, int ranks, int64_t batch, double bits_per_second,
                                     double compute_seconds) {
    if (ranks < 2) throw ShapeError("--ranks: data-parallel training needs 2 or more ranks");
    if (batch % ranks != 0)
        throw ShapeError("--batch " + std::to_string(batch) + " does not divide among " +
                         std::to_string(ranks) + " ranks (each computes an equal share)");
    if (!(bits_per_second > 0)) throw ShapeError("--bandwidth must be positive");
    CommunicationCost c;
    c.ranks = ranks;
    c.batch = batch;
    c.bits_per_second = bits_per_second;
    for (int64_t i = model.frozen_layers(); i < model.size(); ++i)
        c.gradient_bytes = checked_add(c.gradient_bytes, checked_mul(model.layer(i).param_count(), 4));
    c.bytes_per_rank = 2 * (ranks - 1) * c.gradient_bytes / ranks;
    c.seconds = 8.0 * static_cast<double>(c.bytes_per_rank) / bits_per_second;
    c.compute_seconds = compute_seconds;
    c.step_seconds_overlapped = std::max(c.seconds, compute_seconds);
    c.step_seconds_serial = c.seconds + compute_seconds;
    c.network_bound = c.seconds > compute_seconds;
    return c;
}

namespace {

std::string rate_text(double bits_per_second) {
    char buf[64];
    if (bits_per_second >= 1e9)
        std::snprintf(buf, sizeof buf, "%g Gbit/s", bits_per_second / 1e9);
    else
        std::snprintf(buf, sizeof buf, "%g Mbit/s", bits_per_second / 1e6);
    return buf;
}

}  // namespace

std::string format_communication(const CommunicationCost& c) {
    const int64_t share = c.batch / c.ranks;
    char buf[2048];
    std::snprintf(
        buf, sizeof buf,
        "Data-parallel over %d ranks at %s (batch %lld = %lld per rank):\n"
        "  gradients      %s bytes per step (4 bytes per trainable parameter)\n"
        "  all-reduce     each rank sends and receives 2·(%d−1)/%d × that = %s bytes (a ring)\n"
        "  network        %.2f ms per step (%s bytes · 8 / %s)\n"
        "  computation    %.2f ms per step at %lld images per rank (measured)\n"
        "  step           %.2f ms if the sums overlap backward fully, %.2f ms if not; %.0f-%.0f images/s\n"
        "  bound by       %s\n",
        c.ranks, rate_text(c.bits_per_second).c_str(), static_cast<long long>(c.batch),
        static_cast<long long>(share), with_commas(c.gradient_bytes).c_str(), c.ranks, c.ranks,
        with_commas(c.bytes_per_rank).c_str(), 1000 * c.seconds, with_commas(c.bytes_per_rank).c_str(),
        rate_text(c.bits_per_second).c_str(), 1000 * c.compute_seconds, static_cast<long long>(share),
        1000 * c.step_seconds_overlapped, 1000 * c.step_seconds_serial,
        static_cast<double>(c.batch) / c.step_seconds_serial,
        static_cast<double>(c.batch) / c.step_seconds_overlapped,
        c.network_bound
            ? "the network: sending the gradients takes longer than computing them; a larger batch "
              "per rank or a faster network would help, more ranks would not"
            : "the CPU: the network keeps up with the computation");
    return buf;
}

std::string communication_json(const CommunicationCost& c) {
    return nlohmann::json{{"ranks", c.ranks},
                          {"batch", c.batch},
                          {"bandwidth_bits_per_s", c.bits_per_second},
                          {"gradient_bytes", c.gradient_bytes},
                          {"allreduce_bytes_per_rank", c.bytes_per_rank},
                          {"communication_ms", 1000 * c.seconds},
                          {"compute_ms", 1000 * c.compute_seconds},
                          {"step_ms_overlapped", 1000 * c.step_seconds_overlapped},
                          {"step_ms_serial", 1000 * c.step_seconds_serial},
                          {"bound_by", c.network_bound ? "network" : "compute"}}
        .dump();
}

double parse_bandwidth(const std::string& text) {
    std::string t;
    for (char ch : text)
        if (!std::isspace(static_cast<unsigned char>(ch))) t += ch;
    size_t digits = 0;
    while (digits < t.size() && (std::isdigit(static_cast<unsigned char>(t[digits])) || t[digits] == '.'))
        ++digits;
    const std::string unit = t.substr(digits);
    const auto refuse = [&] {
        return ParseError("bandwidth '" + text +
                          "' (expected a number and a unit: 10Gbit/s, 100Mbit/s, 25Gbps, 1.25GB/s)");
    };
    double number = 0;
    try {
        size_t used = 0;
        number = std::stod(t.substr(0, digits), &used);
        if (used != digits) throw refuse();
    } catch (const std::logic_error&) {
        throw refuse();
    }
    if (unit.size() < 2) throw refuse();
    const double prefix = unit[0] == 'k' || unit[0] == 'K' ? 1e3
                          : unit[0] == 'M'                 ? 1e6
                          : unit[0] == 'G'                 ? 1e9
                          : unit[0] == 'T'                 ? 1e12
                                                           : 0;
    const std::string rest = unit.substr(1);
    double per_unit = 0;  // bits
    if (rest == "bit/s" || rest == "b/s" || rest == "bps")
        per_unit = 1;
    else if (rest == "B/s" || rest == "Bps")
        per_unit = 8;
    if (prefix == 0 || per_unit == 0 || !(number > 0)) throw refuse();
    return number * prefix * per_unit;
}

}  // namespace lenz
