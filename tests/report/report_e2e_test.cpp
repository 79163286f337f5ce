// End to end: the generated report.html opened in headless Chromium renders (a screenshot of the
// expected size that is not blank) with nothing on the console. Skipped where Chromium is missing.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "lenz/report.h"
#include "report/report_fixture.h"

namespace lenz {
namespace {

namespace fs = std::filesystem;

constexpr const char* kChromium = "/usr/bin/chromium";

TEST(ReportInBrowser, RendersWithoutConsoleErrors) {
    if (!fs::exists(kChromium)) GTEST_SKIP() << kChromium << " is missing (Debian package chromium)";
    const fs::path dir = fs::temp_directory_path() / ("lenz-e2e-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir / "profile");
    testing::ReportFixture f;
    const fs::path report = dir / "report.html";
    write_report(report.string(), f.data);
    ASSERT_LT(fs::file_size(report), 2u << 20);

    const fs::path shot = dir / "screenshot.png", log = dir / "chromium.log";
    // A fresh profile and no background services: nothing but the file is loaded.
    const std::string cmd =
        std::string("timeout 60 ") + kChromium +
        " --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking"
        " --disable-component-update --disable-sync --user-data-dir=" +
        (dir / "profile").string() +
        " --enable-logging=stderr --v=0 --hide-scrollbars --screenshot=" + shot.string() +
        " --window-size=1200,2000 file://" + report.string() + " >" + log.string() + " 2>&1";
    const int status = std::system(cmd.c_str());
    std::stringstream out;
    out << std::ifstream(log).rdbuf();
    ASSERT_EQ(status, 0) << out.str();
    ASSERT_TRUE(fs::exists(shot)) << out.str();

    // Console messages (errors or otherwise) and failed loads would show in the log.
    for (const char* bad : {"CONSOLE", "Uncaught", "Failed to load", "ERR_FILE_NOT_FOUND", "net::ERR"})
        EXPECT_EQ(out.str().find(bad), std::string::npos) << bad << " in:\n" << out.str();

    const Image image = read_image(shot.string());
    EXPECT_EQ(image.width, 1200);
    EXPECT_EQ(image.height, 2000);
    // Not blank: the pixels vary, and a good share is neither white nor the page background.
    double sum = 0, sq = 0;
    int64_t inked = 0;
    const int64_t pixels = image.width * image.height;
    for (int64_t i = 0; i < pixels; ++i) {
        const uint8_t* p = &image.pixels[static_cast<size_t>(i * image.channels)];
        const double v = (p[0] + p[image.channels > 1 ? 1 : 0] + p[image.channels > 2 ? 2 : 0]) / 3.0;
        sum += v;
        sq += v * v;
        inked += v < 200;
    }
    const double mean = sum / static_cast<double>(pixels);
    EXPECT_GT(std::sqrt(sq / static_cast<double>(pixels) - mean * mean), 20.0);
    EXPECT_GT(inked, pixels / 20);
    // The dark header band is at the top, as the stylesheet says.
    EXPECT_LT(image.pixels[static_cast<size_t>((20 * image.width + 600) * image.channels)], 64);
    if (!getenv("LENZ_KEEP_SCREENSHOT"))
        fs::remove_all(dir);
    else
        std::printf("kept %s\n", shot.c_str());
}

}  // namespace
}  // namespace lenz
