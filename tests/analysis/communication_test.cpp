// The summary's data-parallel estimate: the gradients a ring all-reduce moves, the time they take
// at a bandwidth, and which of network and CPU bounds the step; and the bandwidth's parsing.
#include "lenz/communication.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli/run_lenz.h"
#include "lenz/error.h"
#include "lenz/model_text.h"

namespace lenz {
namespace {

Model fashion_model() {
    return load_model_file(std::string(LENZ_SOURCE_DIR) + "/models/fashion.lenz");
}

TEST(Communication, ARingMovesTwiceTheGradientsLessOneShare) {
    const Model m = fashion_model();
    // 421,642 parameters: 1,686,568 bytes of gradients; on 4 ranks each sends and receives
    // 2·3/4 of them, 2,529,852 bytes, which take 2.0239 ms at 10 Gbit/s.
    const CommunicationCost c = communication_cost(m, 4, 256, 10e9, 0.010);
    EXPECT_EQ(c.gradient_bytes, 1686568);
    EXPECT_EQ(c.bytes_per_rank, 2529852);
    EXPECT_NEAR(c.seconds, 2529852 * 8 / 10e9, 1e-12);
    EXPECT_DOUBLE_EQ(c.step_seconds_overlapped, 0.010);
    EXPECT_NEAR(c.step_seconds_serial, 0.010 + c.seconds, 1e-12);
    EXPECT_FALSE(c.network_bound);
    // At 100 Mbit/s the same sums take 202 ms: the network bounds the step.
    const CommunicationCost slow = communication_cost(m, 4, 256, 100e6, 0.010);
    EXPECT_TRUE(slow.network_bound);
    EXPECT_NEAR(slow.step_seconds_overlapped, slow.seconds, 1e-12);
    EXPECT_NE(format_communication(slow).find("the network"), std::string::npos);
}

TEST(Communication, FrozenLayersSendNothing) {
    Model m = fashion_model();
    const int64_t all = communication_cost(m, 2, 64, 1e9, 0.01).gradient_bytes;
    m.freeze(m.size() - 1);  // only the last layer trains
    EXPECT_EQ(communication_cost(m, 2, 64, 1e9, 0.01).gradient_bytes,
              4 * m.layer(m.size() - 1).param_count());
    EXPECT_LT(4 * m.layer(m.size() - 1).param_count(), all);
}

TEST(Communication, BatchesThatDoNotDivideAndSingleRanksAreErrors) {
    const Model m = fashion_model();
    EXPECT_THROW(communication_cost(m, 3, 64, 1e9, 0.01), ShapeError);
    EXPECT_THROW(communication_cost(m, 1, 64, 1e9, 0.01), ShapeError);
}

TEST(Communication, BandwidthsInBitsOrBytes) {
    EXPECT_DOUBLE_EQ(parse_bandwidth("10Gbit/s"), 10e9);
    EXPECT_DOUBLE_EQ(parse_bandwidth("25 Gb/s"), 25e9);
    EXPECT_DOUBLE_EQ(parse_bandwidth("100Mbps"), 100e6);
    EXPECT_DOUBLE_EQ(parse_bandwidth("1.25GB/s"), 10e9);
    for (const char* bad : {"", "10", "fast", "10Gbit", "-1Gbit/s", "0Gbit/s", "10Xbit/s", "1.2.3Gbit/s"})
        EXPECT_THROW(parse_bandwidth(bad), ParseError) << bad;
}

TEST(Communication, SummaryAddsTheSectionAndItsJson) {
    const std::string model = std::string(LENZ_SOURCE_DIR) + "/models/fashion.lenz";
    const auto text =
        testing::run_lenz("summary " + model + " --batch 64 --ranks 2 --bandwidth 1Gbit/s --step-ms 5");
    ASSERT_EQ(text.status, 0) << text.out;
    EXPECT_NE(text.out.find("Data-parallel over 2 ranks at 1 Gbit/s (batch 64 = 32 per rank)"),
              std::string::npos)
        << text.out;
    EXPECT_NE(text.out.find("13.49 ms per step (1,686,568 bytes · 8 / 1 Gbit/s)"), std::string::npos)
        << text.out;
    EXPECT_NE(text.out.find("bound by       the network"), std::string::npos) << text.out;
    const auto json = testing::run_lenz("summary " + model +
                                        " --batch 64 --ranks 2 --bandwidth 1Gbit/s --step-ms 5 --json");
    ASSERT_EQ(json.status, 0) << json.out;
    const nlohmann::json j = nlohmann::json::parse(json.out);
    EXPECT_EQ(j.at("params").get<int64_t>(), 421642);  // the summary's own keys stay
    EXPECT_EQ(j.at("communication").at("allreduce_bytes_per_rank").get<int64_t>(), 1686568);
    EXPECT_EQ(j.at("communication").at("bound_by").get<std::string>(), "network");
    const auto odd = testing::run_lenz("summary " + model + " --batch 64 --ranks 3 --step-ms 5");
    EXPECT_EQ(odd.status, 1);
    EXPECT_NE(odd.out.find("--batch 64 does not divide among 3 ranks"), std::string::npos) << odd.out;
}

}  // namespace
}  // namespace lenz
