// The HTML report: one self-contained page (inline CSS, inline SVG, PNGs as data: URIs, no
// scripts, no fonts, no network) that a training run rewrites after every epoch.
#include "lenz/report.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "lenz/error.h"
#include "lenz/evaluate.h"

namespace lenz {
namespace {

constexpr const char* kStyle = R"css(
:root { --ink:#1f2430; --dim:#6b7280; --line:#e5e7eb; --bg:#f6f7f9; --card:#fff; --accent:#21918c; --warn:#d64541; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
       font:14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header { background:#1f2430; color:#fff; padding:22px 32px 18px; }
header .brand { font-size:12px; letter-spacing:.12em; text-transform:uppercase; color:#9ca3af; }
header h1 { margin:2px 0 4px; font-size:26px; font-weight:650; }
header p { margin:0; color:#cbd5e1; }
.kpis { display:flex; gap:14px; margin-top:16px; flex-wrap:wrap; }
.kpi { background:rgba(255,255,255,.08); border-radius:8px; padding:8px 14px; min-width:120px; }
.kpi .v { font-size:22px; font-weight:650; font-variant-numeric:tabular-nums; }
.kpi .k { font-size:12px; color:#9ca3af; }
.kpi.main .v { color:#7ee0c0; font-size:28px; }
main { padding:8px 32px 32px; max-width:1180px; }
section { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:16px 20px; margin-top:18px; }
h2 { font-size:17px; margin:0 0 12px; }
h3 { font-size:14px; margin:14px 0 6px; color:var(--dim); font-weight:600; }
.row { display:flex; gap:28px; flex-wrap:wrap; align-items:flex-start; }
table { border-collapse:collapse; font-variant-numeric:tabular-nums; }
td, th { padding:3px 8px; text-align:left; }
.num { text-align:right; }
.dim { color:var(--dim); }
code { font:12.5px ui-monospace, "DejaVu Sans Mono", Menlo, monospace; }
table.summary th { border-bottom:2px solid var(--line); font-size:12px; color:var(--dim); }
table.summary td { border-bottom:1px solid var(--line); }
table.summary tfoot td { font-weight:650; border-bottom:none; }
table.memory { margin-top:12px; } table.memory th { font-weight:500; padding-right:18px; }
table.confusion td { width:54px; height:30px; text-align:center; border:1px solid #fff; font-size:12.5px; }
table.confusion th.row { text-align:right; font-weight:500; white-space:nowrap; }
table.confusion th.col { vertical-align:bottom; height:92px; padding:0 0 4px; width:54px; }
table.confusion th.col div { writing-mode:vertical-rl; transform:rotate(180deg); font-weight:500; margin:0 auto; }
table.confusion th.corner { vertical-align:bottom; font-size:11px; color:var(--dim); font-weight:400; }
table.confusion .zero { color:#c5c9d0; }
table.per-class th { font-weight:500; text-align:right; white-space:nowrap; }
table.per-class td.bar { width:220px; }
table.per-class td.bar div { height:14px; background:var(--accent); border-radius:3px; }
svg.chart { background:#fff; }
svg .grid { stroke:#eef0f3; } svg .axis, svg .tickmark { stroke:#4b5563; }
svg .tick { font-size:11px; fill:#4b5563; } svg .axis-label { font-size:12px; fill:#374151; }
svg .chart-title { font-size:14px; font-weight:600; fill:#1f2430; } svg .legend { font-size:12px; fill:#374151; }
.strip { display:flex; flex-wrap:wrap; gap:10px; }
figure { margin:0; }
.strip figure { width:96px; text-align:center; font-size:11.5px; line-height:1.3; }
.strip img { width:84px; height:84px; image-rendering:pixelated; border-radius:4px; border:1px solid var(--line); }
.strip .truth { color:var(--ink); } .strip .pred { color:var(--warn); }
img.grid { max-width:100%; image-rendering:pixelated; }
img.input { width:112px; height:112px; image-rendering:pixelated; border:1px solid var(--line); border-radius:4px; }
figcaption { font-size:12px; color:var(--dim); margin-top:4px; }
footer { color:var(--dim); font-size:12px; margin:18px 0 0; }
)css";

std::string name_of(const ReportData& d, int64_t k) {
    return k >= 0 && k < static_cast<int64_t>(d.class_names.size()) ? d.class_names[static_cast<size_t>(k)]
                                                                    : "class " + std::to_string(k);
}

std::string img(const Image& image, const std::string& css_class, const std::string& alt) {
    return "<img class=\"" + css_class + "\" src=\"" + png_data_uri(image) + "\" alt=\"" + html_escape(alt) +
           "\">";
}

std::string kpi(const std::string& value, const std::string& label, bool main = false) {
    return std::string("<div class=\"kpi") + (main ? " main" : "") + "\"><div class=\"v\">" + value +
           "</div><div class=\"k\">" + html_escape(label) + "</div></div>";
}

std::string curves_section(const std::vector<EpochMetrics>& history) {
    const bool segmentation = !std::isnan(history.back().test_mean_iou);
    LineChart loss, accuracy, mean_iou;
    loss.title = "Loss";
    accuracy.title = segmentation ? "Pixel accuracy" : "Accuracy";
    mean_iou.title = "Mean IoU";
    loss.x_label = accuracy.x_label = mean_iou.x_label = "epoch";
    loss.y_label = segmentation ? "loss per pixel" : "cross-entropy loss";
    accuracy.y_label = segmentation ? "pixel accuracy" : "accuracy";
    mean_iou.y_label = "mean IoU";
    accuracy.percent = mean_iou.percent = true;
    ChartSeries train_loss, test_loss;
    train_loss.name = "training";
    train_loss.color = "#3b528b";
    test_loss.name = "test";
    test_loss.color = "#e4572e";
    ChartSeries train_acc = train_loss, test_acc = test_loss, test_iou = test_loss;
    for (const EpochMetrics& m : history) {
        const double e = static_cast<double>(m.epoch);
        for (ChartSeries* s : {&train_loss, &test_loss, &train_acc, &test_acc, &test_iou}) s->x.push_back(e);
        test_iou.y.push_back(m.test_mean_iou);
        train_loss.y.push_back(m.train_loss);
        test_loss.y.push_back(m.test_loss);
        train_acc.y.push_back(m.train_accuracy);
        test_acc.y.push_back(m.test_accuracy);
    }
    loss.series = {train_loss, test_loss};
    accuracy.series = {train_acc, test_acc};
    mean_iou.series = {test_iou};
    std::string h = "<section id=\"training\"><h2>Training</h2>\n<div class=\"row\">" + svg_line_chart(loss) +
                    svg_line_chart(accuracy) + (segmentation ? svg_line_chart(mean_iou) : "") + "</div>\n";
    const EpochMetrics& last = history.back();
    char line[256];
    std::snprintf(line, sizeof line,
                  "<p class=\"dim\">Epoch %lld: learning rate %.3g, %.0f images/s, %.1f s. "
                  "Test metrics are computed after each epoch on the test set.</p>",
                  static_cast<long long>(last.epoch), last.learning_rate, last.images_per_second,
                  last.seconds);
    return h + line + "</section>\n";
}

std::string evaluation_section(const ReportData& d) {
    const EvalResult& r = *d.evaluation;
    char line[200];
    if (r.segmentation)
        std::snprintf(
            line, sizeof line,
            "<p class=\"dim\">%lld test images, %lld pixels scored: pixel accuracy %s, mean IoU %s, "
            "loss %.4f per pixel.</p>\n",
            static_cast<long long>(r.count), static_cast<long long>(r.pixels),
            percent_text(r.accuracy).c_str(), percent_text(r.mean_iou).c_str(), r.loss);
    else
        std::snprintf(line, sizeof line, "<p class=\"dim\">%lld test images: accuracy %s, loss %.4f.</p>\n",
                      static_cast<long long>(r.count), percent_text(r.accuracy).c_str(), r.loss);
    return "<section id=\"evaluation\"><h2>Evaluation</h2>\n" + std::string(line) +
           "<div class=\"row\"><div><h3>Confusion matrix" + (r.segmentation ? " (pixels)" : "") + "</h3>" +
           confusion_matrix_html(r.confusion, d.class_names) + "</div><div><h3>Accuracy per class</h3>" +
           per_class_html(r.per_class_accuracy, d.class_names) + "</div>" +
           (r.segmentation
                ? "<div><h3>IoU per class</h3>" + per_class_html(r.per_class_iou, d.class_names) + "</div>"
                : std::string()) +
           "</div></section>\n";
}

std::string mistakes_section(const ReportData& d) {
    std::string h = "<section id=\"mistakes\"><h2>Misclassified test images</h2>\n<div class=\"strip\">\n";
    for (const Misclassified& m : d.misclassified) {
        char pct[16];
        std::snprintf(pct, sizeof pct, "%.0f%%", 100 * m.confidence);
        h += "<figure>" +
             img(m.image, "", "true " + name_of(d, m.truth) + ", predicted " + name_of(d, m.predicted)) +
             "<div class=\"truth\">" + html_escape(name_of(d, m.truth)) +
             "</div><div class=\"pred\">&rarr; " + html_escape(name_of(d, m.predicted)) + " " + pct +
             "</div></figure>\n";
    }
    return h +
           "</div><p class=\"dim\">Black: the true class; red: what the model predicted, with its "
           "probability.</p></section>\n";
}

std::string segmented_section(const ReportData& d) {
    std::string h = "<section id=\"masks\"><h2>Test images and their masks</h2>\n<div class=\"row\">\n";
    for (size_t i = 0; i < d.segmented.size(); ++i) {
        const SegmentedImage& s = d.segmented[i];
        const std::string n = std::to_string(i);
        h += "<figure>" + img(s.image, "input", "test image " + n) + img(s.truth, "input", "true mask " + n) +
             img(s.predicted, "input", "predicted mask " + n) + "<figcaption>test image " + n +
             ": image, truth, prediction</figcaption></figure>\n";
    }
    return h +
           "</div><p class=\"dim\">Classes in Pascal VOC's colours (the first class black); white: ignored "
           "pixels.</p></section>\n";
}

std::string inside_section(const ReportData& d) {
    const ModelPictures& p = *d.pictures;
    std::string h = "<section id=\"inside\"><h2>Inside the network</h2>\n<div class=\"row\">";
    if (d.picture_input)
        h += "<figure>" + img(*d.picture_input, "input", d.picture_caption) + "<figcaption>" +
             html_escape(d.picture_caption) + "</figcaption></figure>";
    if (!p.probabilities.empty())
        h += "<div><h3>Class probabilities</h3>" + per_class_html(p.probabilities, d.class_names) + "</div>";
    h += "</div>\n";
    if (p.filters)
        h += "<h3>First-layer filters</h3><figure>" + img(*p.filters, "grid", "first-layer filters") +
             "</figure>\n";
    if (!p.feature_maps.empty()) {
        h += "<h3>Feature maps of this image (each channel scaled to its own range, dark = low, yellow = "
             "high)</h3>\n";
        h += "<div class=\"row\">\n";
        for (size_t i = 0; i < p.feature_maps.size(); ++i)
            h += "<figure>" + img(p.feature_maps[i], "grid", p.feature_map_names[i]) + "</figure>\n";
        h += "</div>\n";
    }
    return h + "</section>\n";
}

std::string now_text() {
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    localtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm);
    return buf;
}

}  // namespace

std::vector<Misclassified> find_misclassified(Model& model, const ImageSet& set, const Normalization& norm,
                                              int64_t limit) {
    std::vector<Misclassified> found;
    if (limit <= 0 || set.size() == 0) return found;
    const int64_t K = model.output_shape().elements(), image = set.image_elements();
    const int64_t batch = std::min<int64_t>(128, set.size());
    Inference inference(model, batch);
    std::vector<float> input(static_cast<size_t>(batch * image));
    for (int64_t start = 0; start < set.size() && static_cast<int64_t>(found.size()) < limit;
         start += batch) {
        const int64_t n = std::min(batch, set.size() - start);
        for (int64_t i = 0; i < n; ++i)
            normalize_image(set.pixels.data() + (start + i) * image, set.channels, set.height * set.width,
                            norm, input.data() + i * image);
        const float* out = inference.run(input.data(), n);
        for (int64_t i = 0; i < n && static_cast<int64_t>(found.size()) < limit; ++i) {
            const std::vector<double> p = class_probabilities(model, out + i * K, K);
            const auto best = static_cast<int32_t>(std::max_element(p.begin(), p.end()) - p.begin());
            const int32_t truth = set.labels[static_cast<size_t>(start + i)];
            if (best != truth)
                found.push_back({image_from_set(set, start + i), truth, best, p[static_cast<size_t>(best)]});
        }
    }
    return found;
}

Image colour_mask(const Image& mask) {
    Image out{mask.height, mask.width, 3,
              std::vector<uint8_t>(static_cast<size_t>(mask.height * mask.width * 3))};
    for (size_t i = 0; i < mask.pixels.size(); ++i) {
        const int v = mask.pixels[i];
        uint8_t rgb[3] = {255, 255, 255};
        if (v != kIgnorePixel) {
            // VOC's palette: the class's bits, three at a time, from the top bit of each channel down.
            rgb[0] = rgb[1] = rgb[2] = 0;
            for (int bit = 0, c = v; c; ++bit, c >>= 3)
                for (int channel = 0; channel < 3; ++channel)
                    rgb[channel] |= static_cast<uint8_t>(((c >> channel) & 1) << (7 - bit));
        }
        std::copy(rgb, rgb + 3, out.pixels.begin() + static_cast<std::ptrdiff_t>(3 * i));
    }
    return out;
}

std::vector<SegmentedImage> segment_examples(Model& model, const ImageSet& set, const Normalization& norm,
                                             int64_t limit) {
    std::vector<SegmentedImage> found;
    const int64_t n = std::min(limit, set.size());
    if (n <= 0 || !set.segmentation()) return found;
    const int64_t image = set.image_elements(), plane = set.height * set.width, K = model.output_shape().c;
    Inference inference(model, n);
    std::vector<float> input(static_cast<size_t>(n * image));
    for (int64_t i = 0; i < n; ++i)
        normalize_image(set.pixels.data() + i * image, set.channels, plane, norm, input.data() + i * image);
    const float* out = inference.run(input.data(), n);
    for (int64_t i = 0; i < n; ++i) {
        Image truth{set.height, set.width, 1, {}}, predicted = truth;
        truth.pixels.assign(set.masks.begin() + i * plane, set.masks.begin() + (i + 1) * plane);
        predicted.pixels.resize(static_cast<size_t>(plane));
        for (int64_t p = 0; p < plane; ++p) {  // the top score of (N, K, H, W)
            int64_t best = 0;
            for (int64_t k = 1; k < K; ++k)
                if (out[(i * K + k) * plane + p] > out[(i * K + best) * plane + p]) best = k;
            predicted.pixels[static_cast<size_t>(p)] = static_cast<uint8_t>(best);
        }
        found.push_back({image_from_set(set, i), colour_mask(truth), colour_mask(predicted)});
    }
    return found;
}

std::vector<EpochMetrics> read_metrics_jsonl(const std::string& path) {
    std::ifstream in(path);
    std::map<int64_t, EpochMetrics> by_epoch;  // a restarted run may have logged an epoch twice
    std::string line;
    for (int64_t number = 1; std::getline(in, line); ++number) {
        if (line.empty()) continue;
        try {
            const auto j = nlohmann::json::parse(line);
            EpochMetrics m;
            m.epoch = j.at("epoch").get<int64_t>();
            m.train_loss = j.value("train_loss", 0.0);
            m.train_accuracy = j.value("train_accuracy", 0.0);
            constexpr double none = std::numeric_limits<double>::quiet_NaN();  // a run without a test set
            m.test_loss = j.value("test_loss", none);
            m.test_accuracy = j.value("test_accuracy", none);
            m.test_mean_iou = j.value("test_mean_iou", none);
            m.best = j.value("best", false);
            m.learning_rate = j.value("learning_rate", 0.0);
            m.seconds = j.value("seconds", 0.0);
            m.images_per_second = j.value("images_per_second", 0.0);
            by_epoch[m.epoch] = m;
        } catch (const nlohmann::json::exception& e) {
            throw FormatError(path + ":" + std::to_string(number) + ": not a metrics line: " + e.what());
        }
    }
    std::vector<EpochMetrics> history;
    for (const auto& [epoch, m] : by_epoch) history.push_back(m);
    return history;
}

void add_evaluation(ReportData& data, Model& model, const ImageSet& test, const Normalization& norm,
                    int64_t picture_index) {
    if (data.class_names.empty()) data.class_names = test.class_names;
    if (!data.evaluation) data.evaluation = evaluate(model, test, norm);
    if (test.segmentation())
        data.segmented = segment_examples(model, test, norm, 8);
    else
        data.misclassified = find_misclassified(model, test, norm, 24);
    if (test.size() > 0) {
        picture_index = std::clamp<int64_t>(picture_index, 0, test.size() - 1);
        data.picture_input = image_from_set(test, picture_index);
        data.pictures = picture_model(model, *data.picture_input, norm);
        data.picture_caption =
            "test image " + std::to_string(picture_index) +
            (test.segmentation() ? std::string()
                                 : ": " + name_of(data, test.labels[static_cast<size_t>(picture_index)]));
    }
}

std::function<bool(const EpochMetrics&, const EvalResult&)> epoch_report_writer(
    Model& model, const DataSplit& data, const TrainConfig& c, const std::string& model_name) {
    if (data.test.size() == 0)
        throw Error("the report needs a test set: without one there is nothing to show");
    // The test images the trainer evaluates on (the same stratified subset).
    auto test = std::make_shared<ImageSet>(limit_images(data.test, c.limit_test, c.seed, kTestLimitStream));
    auto base = std::make_shared<ReportData>();
    base->model_name = model_name;
    base->data_name = data.description;
    base->class_names = data.train.class_names;
    base->summary = summarize(model, {.batch = c.batch, .optimizer = c.optimizer.kind});
    // A resumed run's earlier epochs are only in metrics.jsonl.
    const std::string dir = c.out_dir;
    if (c.resume) base->history = read_metrics_jsonl((std::filesystem::path(dir) / "metrics.jsonl").string());
    // The trainer normalises with the training set's statistics; so does this (same function, same data).
    const Normalization norm = compute_normalization(data.train);
    const int64_t epochs = c.epochs;
    return [&model, test, base, dir, norm, epochs](const EpochMetrics& m, const EvalResult& evaluation) {
        std::erase_if(base->history, [&](const EpochMetrics& h) { return h.epoch >= m.epoch; });
        base->history.push_back(m);
        ReportData d = *base;
        d.status = "after epoch " + std::to_string(m.epoch) + " of " + std::to_string(epochs);
        d.evaluation = evaluation;  // the trainer's, so the test set is not run through twice
        add_evaluation(d, model, *test, norm);
        write_report((std::filesystem::path(dir) / "report.html").string(), d);
        return true;
    };
}

std::string render_report(const ReportData& d) {
    std::string h =
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>Lenz report: " +
        html_escape(d.model_name) + "</title>\n<style>" + kStyle + "</style>\n</head>\n<body>\n";
    h += "<header><div class=\"brand\">Lenz report</div><h1>" + html_escape(d.model_name) + "</h1><p>" +
         html_escape(d.data_name) + (d.status.empty() ? "" : " &middot; " + html_escape(d.status)) +
         "</p>\n<div class=\"kpis\">";
    if (d.evaluation)
        h += kpi(percent_text(d.evaluation->accuracy), "test accuracy", true);
    else if (!d.history.empty())
        h += kpi(percent_text(d.history.back().test_accuracy), "test accuracy", true);
    if (d.evaluation) {
        char loss[32];
        std::snprintf(loss, sizeof loss, "%.4f", d.evaluation->loss);
        h += kpi(loss, "test loss");
    }
    if (!d.history.empty()) {
        const auto best =
            std::max_element(d.history.begin(), d.history.end(),
                             [](const auto& a, const auto& b) { return a.test_accuracy < b.test_accuracy; });
        h += kpi(std::to_string(d.history.back().epoch), "epochs");
        h += kpi(percent_text(best->test_accuracy), "best, epoch " + std::to_string(best->epoch));
    }
    if (d.summary) {
        h += kpi(with_commas(d.summary->params), "parameters");
        h += kpi(with_commas(d.summary->mults), "MACs per image");
    }
    h += "</div></header>\n<main>\n";
    if (!d.history.empty()) h += curves_section(d.history);
    if (d.evaluation) h += evaluation_section(d);
    if (!d.misclassified.empty()) h += mistakes_section(d);
    if (!d.segmented.empty()) h += segmented_section(d);
    if (d.pictures) h += inside_section(d);
    if (d.summary)
        h += "<section id=\"model\"><h2>Model</h2>\n" + summary_table_html(*d.summary) + "</section>\n";
    h += "<footer>Written by lenz on " + now_text() +
         ". Self-contained: no scripts, fonts or network.</footer>\n";
    return h + "</main>\n</body>\n</html>\n";
}

void write_report(const std::string& path, const ReportData& data) {
    const std::string html = render_report(data);
    // A temporary file in the same folder, then rename: a browser reloading the page mid-write,
    // or a crash, sees the old report or the new one, never half of one.
    const std::string tmp = path + ".tmp" + std::to_string(::getpid());
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f) throw IoError(tmp + ": cannot create: " + std::strerror(errno));
    bool ok = std::fwrite(html.data(), 1, html.size(), f) == html.size() && std::fflush(f) == 0;
    int err = errno;
    if (std::fclose(f) != 0 && ok) ok = false, err = errno;
    if (!ok) {
        std::remove(tmp.c_str());
        throw IoError(tmp + ": write failed: " + std::strerror(err));
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) {
        std::remove(tmp.c_str());
        throw IoError(path + ": cannot replace: " + ec.message());
    }
}

}  // namespace lenz
