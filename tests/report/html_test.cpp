// The SVG chart and the HTML pieces: well-formed, self-contained, and showing the metrics' numbers.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "lenz/model_text.h"
#include "lenz/report.h"
#include "report/html_check.h"
#include "report/report_fixture.h"

namespace lenz {
namespace {

using testing::count_of;
using testing::markup_problem;

LineChart chart_of(const std::string& title, const std::string& y_label, bool percent) {
    LineChart c;
    c.title = title;
    c.x_label = "epoch";
    c.y_label = y_label;
    c.percent = percent;
    return c;
}

ChartSeries series(const std::string& name, std::vector<double> x, std::vector<double> y) {
    ChartSeries s;
    s.name = name;
    s.color = "#345";
    s.x = std::move(x);
    s.y = std::move(y);
    return s;
}

TEST(Html, Escape) {
    EXPECT_EQ(html_escape("T-shirt/top <a & \"b\" 'c'>"),
              "T-shirt/top &lt;a &amp; &quot;b&quot; &#39;c&#39;&gt;");
    EXPECT_EQ(percent_text(0.92134), "92.13 %");
}

TEST(Svg, LineChartIsWellFormedWithAxesLegendAndValues) {
    LineChart chart = chart_of("Accuracy", "accuracy", true);
    chart.series = {series("training", {1, 2, 3}, {0.81, 0.88, 0.9123}),
                    series("test", {1, 2, 3}, {0.80, 0.86, 0.8977})};
    const std::string svg = svg_line_chart(chart);
    EXPECT_EQ(markup_problem(svg), "") << svg;
    EXPECT_EQ(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u);
    EXPECT_EQ(count_of(svg, "<polyline"), 2);
    EXPECT_EQ(count_of(svg, "<circle"), 6 + 2);  // one per value, one per legend entry
    EXPECT_NE(svg.find("<title>training, epoch 3: 91.23 %</title>"), std::string::npos) << svg;
    EXPECT_NE(svg.find("<title>test, epoch 1: 80.00 %</title>"), std::string::npos);
    EXPECT_NE(svg.find(">epoch</text>"), std::string::npos);
    EXPECT_NE(svg.find(">accuracy</text>"), std::string::npos);
    EXPECT_NE(svg.find("class=\"legend\""), std::string::npos);
    // Integer epoch ticks only, and percentage tick labels.
    EXPECT_NE(svg.find(">2</text>"), std::string::npos);
    EXPECT_EQ(svg.find(">1.5</text>"), std::string::npos);
    EXPECT_NE(svg.find(" %</text>"), std::string::npos);
}

TEST(Svg, OnePointAndNoPointsStillDrawAxes) {
    LineChart one = chart_of("Loss", "loss", false);
    one.series = {series("training", {1}, {0.5})};
    EXPECT_EQ(markup_problem(svg_line_chart(one)), "");
    EXPECT_NE(svg_line_chart(one).find("<title>training, epoch 1: 0.5000</title>"), std::string::npos);
    const LineChart none = chart_of("Loss", "loss", false);
    EXPECT_EQ(markup_problem(svg_line_chart(none)), "");
}

// Ticks are reached by adding steps, so a tick meant to be 0 can come out a hair below it: it must
// still read "0", never "-0" (seen on a one-epoch report).
TEST(Svg, NoTickReadsMinusZero) {
    for (const std::vector<double>& ys :
         std::vector<std::vector<double>>{{0.0}, {-0.3, 0.7}, {-1e-3, 2e-3}, {0.5}}) {
        for (bool percent : {false, true}) {
            LineChart chart = chart_of("Loss", "loss", percent);
            std::vector<double> xs;
            for (size_t i = 0; i < ys.size(); ++i) xs.push_back(static_cast<double>(i + 1));
            chart.series = {series("training", xs, ys)};
            const std::string svg = svg_line_chart(chart);
            EXPECT_FALSE(std::regex_search(svg, std::regex(">-0(\\.0+)?( %)?<"))) << svg;
        }
    }
}

TEST(Html, ConfusionMatrixAndPerClassShowTheCounts) {
    const std::vector<std::vector<int64_t>> confusion = {{50, 3, 0}, {7, 40, 1}, {0, 0, 12}};
    const std::vector<std::string> names = {"cat", "dog", "<eel>"};
    const std::string h = confusion_matrix_html(confusion, names);
    EXPECT_EQ(markup_problem(h), "") << h;
    EXPECT_EQ(count_of(h, "<td"), 9);
    for (const char* cell : {">50</td>", ">3</td>", ">7</td>", ">40</td>", ">1</td>", ">12</td>"})
        EXPECT_NE(h.find(cell), std::string::npos) << cell;
    EXPECT_NE(h.find("dog predicted as cat: 7 (14.58 %)"), std::string::npos);
    EXPECT_NE(h.find("&lt;eel&gt;"), std::string::npos);
    const std::string p = per_class_html({50.0 / 53, 40.0 / 48, 1.0}, names);
    EXPECT_EQ(markup_problem(p), "");
    EXPECT_NE(p.find("94.34 %"), std::string::npos);
    EXPECT_NE(p.find("83.33 %"), std::string::npos);
    EXPECT_NE(p.find("100.00 %"), std::string::npos);
}

TEST(Html, SummaryTableHasTheLayersAndMemoryFigures) {
    const Model m = parse_model("input 28x28x1\nconv 8 3 relu\nmaxpool 2\ndense 10 softmax\n", "t.lenz");
    const Summary s = summarize(m, {.batch = 32});
    const std::string h = summary_table_html(s);
    EXPECT_EQ(markup_problem(h), "") << h;
    EXPECT_NE(h.find(with_commas(s.params)), std::string::npos);
    EXPECT_NE(h.find(with_commas(s.mults)), std::string::npos);
    EXPECT_NE(h.find("26x26x8"), std::string::npos);
    EXPECT_NE(h.find(with_commas(s.inference_bytes_textbook)), std::string::npos);
    EXPECT_NE(h.find(with_commas(s.training_plan.bytes())), std::string::npos);
    EXPECT_NE(h.find("training batch 32"), std::string::npos);
}

// A flatten only renames its input: the report says "(view)" as the CLI table does, not 12,544 bytes.
TEST(Html, AFlattenIsAViewAsInTheCliTable) {
    const Model m =
        parse_model("input 28x28x1\nconv 16 3x3 padding=same\nmaxpool 2\nflatten\ndense 10\n", "t.lenz");
    const Summary s = summarize(m, {});
    const std::string h = summary_table_html(s);
    EXPECT_NE(h.find("<td><code>flatten</code></td><td>1x1x3136</td><td class=\"num\">-</td><td "
                     "class=\"num\">-</td><td class=\"num\">(view)</td>"),
              std::string::npos)
        << h;
    EXPECT_NE(format_summary(s, "t.lenz", false).find("(view)"), std::string::npos);
}

TEST(Report, WholePageIsSelfContainedAndShowsTheMetrics) {
    testing::ReportFixture f;
    const std::string h = render_report(f.data);
    EXPECT_EQ(markup_problem(h), "");
    EXPECT_LT(h.size(), 2u << 20);
    // Nothing to fetch: no scripts, stylesheets, fonts or remote images.
    for (const char* banned : {"<script", "<link", "@import", "url(", "src=\"http", "@font-face"})
        EXPECT_EQ(h.find(banned), std::string::npos) << banned;
    EXPECT_EQ(count_of(h, "http"), count_of(h, "http://www.w3.org/2000/svg"));
    // The numbers: header accuracy, each epoch's values, the confusion counts.
    const EvalResult& r = *f.data.evaluation;
    EXPECT_NE(h.find(percent_text(r.accuracy)), std::string::npos);
    for (const EpochMetrics& m : f.data.history) {
        EXPECT_NE(h.find("test, epoch " + std::to_string(m.epoch) + ": " + percent_text(m.test_accuracy)),
                  std::string::npos);
    }
    for (size_t k = 0; k < r.per_class_accuracy.size(); ++k)
        EXPECT_NE(h.find(percent_text(r.per_class_accuracy[k])), std::string::npos);
    for (const std::string& name : f.data.class_names)
        EXPECT_NE(h.find(html_escape(name)), std::string::npos);
    for (const char* id :
         {"id=\"training\"", "id=\"evaluation\"", "id=\"mistakes\"", "id=\"inside\"", "id=\"model\""})
        EXPECT_NE(h.find(id), std::string::npos) << id;
    EXPECT_EQ(count_of(h, "image-rendering:pixelated"), 3);
    EXPECT_GT(count_of(h, "src=\"data:image/png;base64,"), 5);
}

TEST(Report, SectionsWithoutDataAreLeftOut) {
    ReportData d;
    d.model_name = "empty";
    const std::string h = render_report(d);
    EXPECT_EQ(markup_problem(h), "");
    EXPECT_EQ(h.find("id=\"training\""), std::string::npos);
    EXPECT_EQ(h.find("id=\"evaluation\""), std::string::npos);
}

TEST(Report, WriteIsAtomicAndReplacesTheOldFile) {
    const auto dir = std::filesystem::temp_directory_path() / ("lenz-report-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const std::string path = (dir / "report.html").string();
    ReportData d;
    d.model_name = "first";
    write_report(path, d);
    d.model_name = "second";
    write_report(path, d);
    std::stringstream text;
    text << std::ifstream(path).rdbuf();
    EXPECT_NE(text.str().find("second"), std::string::npos);
    EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir), {}), 1);  // no temporary left
    std::filesystem::remove_all(dir);
}

TEST(Report, MetricsJsonlKeepsTheLastLinePerEpoch) {
    const auto path = std::filesystem::temp_directory_path() / ("lenz-metrics-" + std::to_string(::getpid()));
    std::ofstream(path) << "{\"epoch\":1,\"test_accuracy\":0.5}\n{\"epoch\":2,\"test_accuracy\":0.6}\n"
                           "{\"epoch\":2,\"test_accuracy\":0.7,\"train_loss\":0.25}\n";
    const auto h = read_metrics_jsonl(path.string());
    ASSERT_EQ(h.size(), 2u);
    EXPECT_EQ(h[1].test_accuracy, 0.7);
    EXPECT_EQ(h[1].train_loss, 0.25);
    std::filesystem::remove(path);
    EXPECT_TRUE(read_metrics_jsonl(path.string()).empty());
}

// A run without a test set logs no test figures (epoch_values leaves them out); they read back as
// NaN, which the report shows as no test curve, not as 0 %.
TEST(Report, MetricsJsonlWithoutTestFiguresReadsThemAsMissing) {
    const auto path =
        std::filesystem::temp_directory_path() / ("lenz-metrics-nt-" + std::to_string(::getpid()));
    EpochMetrics m;
    m.epoch = 3;
    m.train_loss = 0.5;
    m.test_loss = m.test_accuracy = std::nan("");
    std::string line = "{";
    for (const MetricValue& v : epoch_values(m))
        line += (line.size() > 1 ? "," : "") + std::string("\"") + v.name + "\":" + std::to_string(v.value);
    std::ofstream(path) << line << "}\n";
    const auto h = read_metrics_jsonl(path.string());
    ASSERT_EQ(h.size(), 1u);
    EXPECT_EQ(h[0].epoch, 3);
    EXPECT_EQ(h[0].train_loss, 0.5);
    EXPECT_TRUE(std::isnan(h[0].test_accuracy));
    EXPECT_FALSE(h[0].best);
    std::filesystem::remove(path);
}

}  // namespace
}  // namespace lenz
