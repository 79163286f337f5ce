// HTML pieces of the report: escaping, the model summary table, the confusion matrix as a heat
// map and the per-class accuracy bars. Styling is in the page's one <style> (report.cpp).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "lenz/report.h"

namespace lenz {
namespace {

std::string class_name(const std::vector<std::string>& names, size_t k) {
    return k < names.size() ? names[k] : "class " + std::to_string(k);
}

std::string fixed(double v, int decimals) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
}

// Bytes as "12,613,600 (12.6 MB)": exact for checking, short for reading.
std::string bytes_cell(int64_t bytes) {
    return with_commas(bytes) + " <span class=\"dim\">(" + human_bytes(bytes) + ")</span>";
}

}  // namespace

std::string html_escape(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        switch (c) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '"':
                out += "&quot;";
                break;
            case '\'':
                out += "&#39;";
                break;
            default:
                out += c;
        }
    }
    return out;
}

std::string percent_text(double fraction) {
    return fixed(100 * fraction, 2) + " %";
}

std::string summary_table_html(const Summary& s) {
    std::string h =
        "<table class=\"summary\">\n<thead><tr><th>#</th><th>layer</th><th>output (H x W x C)</th>"
        "<th class=\"num\">params</th><th class=\"num\">MACs</th><th class=\"num\">output bytes</th>"
        "</tr></thead>\n<tbody>\n";
    h += "<tr><td>0</td><td>input</td><td>" + s.input.str() +
         "</td><td class=\"num\">-</td><td class=\"num\">-</td>"
         "<td class=\"num\">" +
         with_commas(s.input_bytes) + "</td></tr>\n";
    for (const LayerCost& c : s.layers)
        h += "<tr><td>" + std::to_string(c.index) + "</td><td><code>" + html_escape(c.text) +
             "</code></td><td>" + c.output.str() + "</td><td class=\"num\">" +
             (c.params ? with_commas(c.params) : "-") + "</td><td class=\"num\">" +
             (c.mults ? with_commas(c.mults) : "-") + "</td><td class=\"num\">" + output_bytes_text(c) +
             "</td></tr>\n";
    h += "</tbody>\n<tfoot><tr><td></td><td>total</td><td></td><td class=\"num\">" + with_commas(s.params) +
         "</td><td class=\"num\">" + with_commas(s.mults) + "</td><td></td></tr></tfoot>\n</table>\n";

    auto row = [](const std::string& what, const std::string& value, const std::string& note) {
        return "<tr><th>" + what + "</th><td class=\"num\">" + value + "</td><td class=\"dim\">" + note +
               "</td></tr>\n";
    };
    h += "<table class=\"memory\">\n";
    h += row("parameters",
             with_commas(s.params) + (s.non_trainable ? " + " + with_commas(s.non_trainable) : ""),
             "trainable" + std::string(s.non_trainable ? " + non-trainable" : "") + ", " +
                 bytes_cell(s.param_bytes) + " as " + s.options.dtype);
    h += row("multiplications", with_commas(s.mults),
             "MACs per image, forward (" + with_commas(2 * s.mults) + " FLOPs)");
    h += row("one prediction, textbook", bytes_cell(s.inference_bytes_textbook),
             "largest pair of consecutive activations + parameters");
    h += row("one prediction, engine plan", bytes_cell(s.inference_plan.bytes()),
             "arena + workspace + parameters");
    h += row("training batch " + std::to_string(s.options.batch) + ", textbook",
             bytes_cell(s.training_bytes_textbook), "batch x every activation + parameters + gradients");
    h +=
        row("training batch " + std::to_string(s.options.batch) + ", engine plan",
            bytes_cell(s.training_plan.bytes()),
            std::string("with ") + optimizer_name(s.options.optimizer) + " state, activations and workspace");
    h += "</table>\n";
    return h;
}

std::string confusion_matrix_html(const std::vector<std::vector<int64_t>>& confusion,
                                  const std::vector<std::string>& names) {
    const size_t K = confusion.size();
    std::string h = "<table class=\"confusion\">\n<thead><tr><th class=\"corner\">true \\ predicted</th>";
    for (size_t k = 0; k < K; ++k)
        h += "<th class=\"col\"><div>" + html_escape(class_name(names, k)) + "</div></th>";
    h += "</tr></thead>\n<tbody>\n";
    for (size_t t = 0; t < K; ++t) {
        const int64_t total = std::accumulate(confusion[t].begin(), confusion[t].end(), int64_t{0});
        h += "<tr><th class=\"row\">" + html_escape(class_name(names, t)) + "</th>";
        for (size_t p = 0; p < confusion[t].size(); ++p) {
            const int64_t n = confusion[t][p];
            const double share = total ? static_cast<double>(n) / static_cast<double>(total) : 0.0;
            // Correct predictions shade green, mistakes red; the share of the row sets the strength,
            // with a square root so that a 2 % confusion is still visible next to a 95 % diagonal.
            const double a = n ? 0.08 + 0.92 * std::sqrt(share) : 0.0;
            const std::string rgb = t == p ? "33,145,140" : "214,69,65";
            const bool dark = a > 0.55;
            h += "<td style=\"background:rgba(" + rgb + "," + fixed(a, 3) + ")" +
                 (dark ? ";color:#fff" : "") + "\" title=\"" + html_escape(class_name(names, t)) +
                 " predicted as " + html_escape(class_name(names, p)) + ": " + std::to_string(n) + " (" +
                 percent_text(share) + ")\">" + (n ? std::to_string(n) : "<span class=\"zero\">0</span>") +
                 "</td>";
        }
        h += "</tr>\n";
    }
    h += "</tbody>\n</table>\n";
    return h;
}

std::string per_class_html(const std::vector<double>& accuracy, const std::vector<std::string>& names) {
    std::string h = "<table class=\"per-class\">\n";
    for (size_t k = 0; k < accuracy.size(); ++k) {
        const bool absent = std::isnan(accuracy[k]);  // an IoU of a class in neither truth nor prediction
        const double a = absent ? 0.0 : std::clamp(accuracy[k], 0.0, 1.0);
        h += "<tr><th>" + html_escape(class_name(names, k)) +
             "</th><td class=\"bar\"><div style=\"width:" + fixed(100 * a, 1) +
             "%\"></div></td><td class=\"num\">" +
             (absent ? std::string("&ndash;") : percent_text(accuracy[k])) + "</td></tr>\n";
    }
    h += "</table>\n";
    return h;
}

}  // namespace lenz
