// The `.lenz` model format: one layer a line, `#` comments. Every error names file, line and column.
#include "lenz/model_text.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "core/files.h"
#include "layers/window.h"
#include "lenz/error.h"
#include "lenz/model.h"

namespace lenz {
namespace {

// Real models have hundreds of layers; the limits leave room for generated graphs 100 times deeper
// while keeping a hostile file from holding the parser for long.
constexpr int64_t kMaxModelFileBytes = 8 << 20;
constexpr int64_t kMaxLayers = 200000;

struct Token {
    std::string text;
    int column;  // 1-based
};

class LineParser {
  public:
    LineParser(const std::string& file, int line, std::vector<Token> tokens)
        : file_(file), line_(line), tokens_(std::move(tokens)) {}

    [[noreturn]] void fail(int column, const std::string& what) const {
        throw ParseError(file_ + ":" + std::to_string(line_) + ":" + std::to_string(column) + ": " + what);
    }
    const Token& keyword() const { return tokens_[0]; }
    int end_column() const { return tokens_.back().column + static_cast<int>(tokens_.back().text.size()); }

    // The next positional argument, or an error saying what was expected there.
    const Token& positional(size_t index, const std::string& expected) const {
        if (index >= tokens_.size() || tokens_[index].text.find('=') != std::string::npos)
            fail(index < tokens_.size() ? tokens_[index].column : end_column(),
                 keyword().text + ": expected " + expected);
        return tokens_[index];
    }

    int64_t integer(const Token& t, const std::string& what, int64_t max = kMaxDimension) const {
        return integer_in(t.text, t.column, what, max);
    }
    int64_t integer_in(const std::string& s, int column, const std::string& what,
                       int64_t max = kMaxDimension) const {
        if (s.empty() || s.size() > 18 || s.find_first_not_of("0123456789") != std::string::npos)
            fail(column,
                 keyword().text + ": expected " + what + " as a positive whole number, got '" + s + "'");
        const int64_t v = std::stoll(s);
        if (v <= 0) fail(column, keyword().text + ": " + what + " must be positive, got " + s);
        if (v > max)
            fail(column,
                 keyword().text + ": " + what + " " + s + " is larger than the limit " + std::to_string(max));
        return v;
    }

    // "3" or "3x5"
    std::pair<int64_t, int64_t> pair(const std::string& s, int column, const std::string& what) const {
        const size_t x = s.find('x');
        if (x == std::string::npos) {
            const int64_t v = integer_in(s, column, what);
            return {v, v};
        }
        return {integer_in(s.substr(0, x), column, what + " height"),
                integer_in(s.substr(x + 1), column + static_cast<int>(x) + 1, what + " width")};
    }

    double rate(const Token& t) const {
        char* end = nullptr;
        errno = 0;
        const double v = std::strtod(t.text.c_str(), &end);
        if (t.text.empty() || *end != '\0' || errno != 0 || !std::isfinite(v))
            fail(t.column, "dropout: expected a rate such as 0.5, got '" + t.text + "'");
        if (v < 0.0 || v >= 1.0)
            fail(t.column, "dropout: rate must be at least 0 and below 1, got " + t.text);
        return v;
    }

    std::optional<ActivationSpec> activation(const Token& t) const {
        const std::string& s = t.text;
        if (s == "relu") return ActivationSpec{Activation::relu};
        if (s == "sigmoid") return ActivationSpec{Activation::sigmoid};
        if (s == "tanh") return ActivationSpec{Activation::tanh};
        if (s == "relu6") return ActivationSpec{Activation::relu6};
        if (s == "hardsigmoid") return ActivationSpec{Activation::hard_sigmoid};
        if (s == "hardswish") return ActivationSpec{Activation::hard_swish};
        if (s == "silu" || s == "swish") return ActivationSpec{Activation::silu};
        if (s == "gelu") return ActivationSpec{Activation::gelu};
        if (s == "softmax") return ActivationSpec{Activation::softmax};
        if (s == "logsoftmax") return ActivationSpec{Activation::log_softmax};
        if (s == "elu") return elu();
        if (s.rfind("elu=", 0) == 0) {
            const std::string a = s.substr(4);
            char* end = nullptr;
            const double v = std::strtod(a.c_str(), &end);
            // alpha > 0 keeps elu monotonic, so that its derivative follows from its output.
            if (a.empty() || *end != '\0' || !std::isfinite(v) || v <= 0.0 || v > 1e6)
                fail(t.column + 4, "elu: expected a positive alpha such as 1.0, got '" + a + "'");
            return elu(static_cast<float>(v));
        }
        if (s == "leakyrelu") return ActivationSpec{Activation::leaky_relu, 0.01f};
        if (s.rfind("leakyrelu=", 0) == 0) {
            const std::string a = s.substr(10);
            char* end = nullptr;
            const double v = std::strtod(a.c_str(), &end);
            if (a.empty() || *end != '\0' || !std::isfinite(v) || v <= 0.0 || v >= 1.0)
                fail(t.column + 10,
                     "leakyrelu: expected a slope between 0 and 1 such as 0.1, got '" + a + "'");
            return ActivationSpec{Activation::leaky_relu, static_cast<float>(v)};
        }
        return std::nullopt;
    }

    // An activation as an option of another layer, which keeps only its output for training.
    std::optional<ActivationSpec> fused_activation(const Token& t) const {
        auto act = activation(t);
        if (act && !derivative_follows_from_output(act->kind))
            fail(t.column, keyword().text + ": " + act->str() +
                               " needs its input to train, so it is a layer of its own: write '" +
                               act->str() + "' on the next line");
        return act;
    }

    Padding padding(const std::string& s, int column) const {
        if (s == "same") return {PaddingMode::same};
        if (s == "valid") return {PaddingMode::valid};
        if (s.empty() || s.find_first_not_of("0123456789x") != std::string::npos)
            fail(column, keyword().text +
                             ": expected padding=same, padding=valid or padding=P (pixels), got '" + s + "'");
        if (s == "0") return {PaddingMode::pixels, 0, 0};
        const size_t x = s.find('x');
        auto pixels = [&](const std::string& part, int col) -> int64_t {
            if (part == "0") return 0;
            return integer_in(part, col, "padding");
        };
        if (x == std::string::npos) {
            const int64_t p = pixels(s, column);
            return {PaddingMode::pixels, p, p};
        }
        return {PaddingMode::pixels, pixels(s.substr(0, x), column),
                pixels(s.substr(x + 1), column + static_cast<int>(x) + 1)};
    }

    // Options after the positional arguments: key=value and flags, each at most once.
    struct Options {
        std::optional<std::pair<int64_t, int64_t>> stride, dilation, output_padding;
        std::optional<Padding> padding;
        std::optional<ActivationSpec> activation;
        std::optional<int64_t> groups;
        bool nobias = false, ceil = false, count_padding = false;
    };
    // window: stride= and padding=; act_and_bias: an activation and nobias; conv: groups= and
    // dilation=; pool: ceil; average: count-padding; transposed: output-padding=, and padding in pixels.
    Options options(size_t first, bool window, bool act_and_bias, bool conv = false, bool pool = false,
                    bool average = false, bool transposed = false) const {
        Options o;
        const std::string expected =
            std::string("expected ") +
            (window
                 ? (transposed ? "stride=S, padding=P, output-padding=P" : "stride=S, padding=same|valid|P")
                 : "") +
            (conv ? ", groups=G, dilation=D" : "") + (average ? ", count-padding" : "") +
            (pool ? " or ceil" : "") + (window && act_and_bias ? ", " : "") +
            (act_and_bias ? "an activation (relu, leakyrelu[=A], sigmoid, tanh, softmax, logsoftmax, relu6, "
                            "hardsigmoid, "
                            "elu[=A]) or nobias"
                          : "");
        for (size_t i = first; i < tokens_.size(); ++i) {
            const Token& t = tokens_[i];
            const size_t eq = t.text.find('=');
            const std::string key = t.text.substr(0, eq);
            const int value_column = t.column + static_cast<int>(eq) + 1;
            auto once = [&](bool seen) {
                if (seen) fail(t.column, keyword().text + ": option '" + key + "' given twice");
            };
            if (window && key == "stride" && eq != std::string::npos) {
                once(o.stride.has_value());
                o.stride = pair(t.text.substr(eq + 1), value_column, "stride");
            } else if (window && key == "padding" && eq != std::string::npos) {
                once(o.padding.has_value());
                o.padding = padding(t.text.substr(eq + 1), value_column);
            } else if (transposed && key == "output-padding" && eq != std::string::npos) {
                once(o.output_padding.has_value());
                const Padding p = padding(t.text.substr(eq + 1), value_column);
                if (p.mode != PaddingMode::pixels)
                    fail(value_column,
                         keyword().text + ": output-padding is in pixels, e.g. output-padding=1");
                o.output_padding = {p.h, p.w};
            } else if (conv && key == "groups" && eq != std::string::npos) {
                once(o.groups.has_value());
                o.groups = integer_in(t.text.substr(eq + 1), value_column, "groups");
            } else if (conv && key == "dilation" && eq != std::string::npos) {
                once(o.dilation.has_value());
                o.dilation = pair(t.text.substr(eq + 1), value_column, "dilation");
            } else if (pool && t.text == "ceil") {
                once(o.ceil);
                o.ceil = true;
            } else if (average && t.text == "count-padding") {
                once(o.count_padding);
                o.count_padding = true;
            } else if (act_and_bias && t.text == "nobias") {
                once(o.nobias);
                o.nobias = true;
            } else if (auto act = act_and_bias ? fused_activation(t) : std::nullopt) {
                if (o.activation) fail(t.column, keyword().text + ": only one activation per layer");
                o.activation = act;
            } else {
                fail(t.column, keyword().text + ": unknown option '" + t.text + "' (" + expected + ")");
            }
        }
        return o;
    }

    void no_more(size_t count) const {
        if (tokens_.size() > count)
            fail(tokens_[count].column,
                 keyword().text + " takes no further arguments, got '" + tokens_[count].text + "'");
    }

    size_t size() const { return tokens_.size(); }
    const std::vector<Token>& tokens() const { return tokens_; }
    const Token& token(size_t i) const { return tokens_[i]; }
    // After the graph words are taken out: what the layer's own parser reads.
    void keep_only(std::vector<Token> tokens) { tokens_ = std::move(tokens); }

  private:
    const std::string& file_;
    int line_;
    std::vector<Token> tokens_;
};

std::vector<Token> tokenize(const std::string& line) {
    std::vector<Token> tokens;
    size_t i = 0;
    while (i < line.size()) {
        if (line[i] == '#') break;
        if (std::isspace(static_cast<unsigned char>(line[i]))) {
            ++i;
            continue;
        }
        const size_t start = i;
        while (i < line.size() && !std::isspace(static_cast<unsigned char>(line[i])) && line[i] != '#') ++i;
        tokens.push_back({line.substr(start, i - start), static_cast<int>(start) + 1});
    }
    return tokens;
}

Shape parse_input(const LineParser& p) {
    const Token& t = p.positional(1, "the input size HxWxC, e.g. input 28x28x1");
    const std::string& s = t.text;
    const size_t x1 = s.find('x'), x2 = x1 == std::string::npos ? x1 : s.find('x', x1 + 1);
    if (x2 == std::string::npos)
        p.fail(t.column, "input: expected HxWxC (height x width x channels), e.g. 28x28x1, got '" + s + "'");
    const int c1 = t.column + static_cast<int>(x1) + 1, c2 = t.column + static_cast<int>(x2) + 1;
    Shape shape{p.integer_in(s.substr(0, x1), t.column, "height"),
                p.integer_in(s.substr(x1 + 1, x2 - x1 - 1), c1, "width"),
                p.integer_in(s.substr(x2 + 1), c2, "channels")};
    p.no_more(2);
    return shape;
}

LayerConfig parse_layer(const LineParser& p) {
    const std::string& kw = p.keyword().text;
    if (kw == "conv") {
        Conv2dConfig c;
        c.filters =
            p.integer(p.positional(1, "the number of filters, e.g. conv 32 3x3"), "the number of filters");
        const Token& k = p.positional(2, "the kernel size, e.g. 3 or 3x3");
        std::tie(c.kernel_h, c.kernel_w) = p.pair(k.text, k.column, "kernel size");
        const auto o = p.options(3, true, true, true);
        if (o.stride) std::tie(c.stride_h, c.stride_w) = *o.stride;
        if (o.padding) c.padding = *o.padding;
        if (o.activation) c.activation = *o.activation;
        if (o.groups) c.groups = *o.groups;
        if (o.dilation) std::tie(c.dilation_h, c.dilation_w) = *o.dilation;
        c.bias = !o.nobias;
        return c;
    }
    if (kw == "convtranspose") {
        ConvTransposeConfig c;
        c.filters = p.integer(p.positional(1, "the number of filters, e.g. convtranspose 32 2 stride=2"),
                              "the number of filters");
        const Token& k = p.positional(2, "the kernel size, e.g. 2 or 3x3");
        std::tie(c.kernel_h, c.kernel_w) = p.pair(k.text, k.column, "kernel size");
        const auto o = p.options(3, true, true, true, false, false, true);
        if (o.stride) std::tie(c.stride_h, c.stride_w) = *o.stride;
        if (o.padding) {
            // "same" has no meaning here: the padding is what is cropped off the output.
            if (o.padding->mode == PaddingMode::same) {
                const Token& t = *std::find_if(p.tokens().begin(), p.tokens().end(), [](const Token& t) {
                    return t.text.rfind("padding=", 0) == 0;
                });
                p.fail(t.column,
                       "convtranspose: padding is in pixels (what is cut off each side of the "
                       "output), e.g. padding=1; 'same' is for conv");
            }
            c.padding_h = o.padding->h;
            c.padding_w = o.padding->w;
        }
        if (o.output_padding) std::tie(c.output_padding_h, c.output_padding_w) = *o.output_padding;
        if (o.activation) c.activation = *o.activation;
        if (o.groups) c.groups = *o.groups;
        if (o.dilation) std::tie(c.dilation_h, c.dilation_w) = *o.dilation;
        c.bias = !o.nobias;
        return c;
    }
    if (kw == "maxpool" || kw == "avgpool") {
        Pool2dConfig c;
        c.kind = kw == "maxpool" ? PoolKind::max : PoolKind::average;
        const Token& k = p.positional(1, "the pool size, e.g. 2 or 2x2");
        std::tie(c.kernel_h, c.kernel_w) = p.pair(k.text, k.column, "pool size");
        const auto o = p.options(2, true, false, false, true, kw == "avgpool");
        if (o.stride) std::tie(c.stride_h, c.stride_w) = *o.stride;
        if (o.padding) c.padding = *o.padding;
        c.ceil = o.ceil;
        c.count_padding = o.count_padding;
        return c;
    }
    if (kw == "globalavgpool" || kw == "globalmaxpool" || kw == "flatten" || kw == "batchnorm") {
        p.no_more(1);
        if (kw == "flatten") return FlattenConfig{};
        if (kw == "batchnorm") return BatchNormConfig{};
        return GlobalPoolConfig{kw == "globalmaxpool" ? PoolKind::max : PoolKind::average};
    }
    if (kw == "dense") {
        DenseConfig c;
        c.units = p.integer(p.positional(1, "the number of units, e.g. dense 128"), "the number of units");
        const auto o = p.options(2, false, true);
        if (o.activation) c.activation = *o.activation;
        c.bias = !o.nobias;
        return c;
    }
    if (kw == "dropout") {
        const double rate = p.rate(p.positional(1, "a rate such as dropout 0.5"));
        p.no_more(2);
        return DropoutConfig{rate};
    }
    if (auto act = p.activation(p.keyword())) {
        p.no_more(1);
        return ActivationConfig{*act};
    }
    if (kw == "shuffle") {
        const int64_t groups = p.integer(p.positional(1, "the number of groups, e.g. shuffle 2"), "groups");
        p.no_more(2);
        return ChannelShuffleConfig{groups};
    }
    if (kw == "upsample") {
        UpsampleConfig c;
        const std::string expected =
            "the scale or the size, e.g. upsample 2, upsample 2x3 or upsample size=65x65";
        if (p.size() < 2) p.positional(1, expected);  // the error
        const Token& t = p.token(1);
        if (t.text.rfind("size=", 0) == 0) {
            std::tie(c.size_h, c.size_w) = p.pair(t.text.substr(5), t.column + 5, "size");
            c.scale_h = c.scale_w = 1;
        } else {
            std::tie(c.scale_h, c.scale_w) = p.pair(p.positional(1, expected).text, t.column, "scale");
        }
        bool mode_given = false;
        for (size_t i = 2; i < p.size(); ++i) {
            const Token& o = p.token(i);
            if (o.text == "nearest" || o.text == "bilinear") {
                if (mode_given) p.fail(o.column, "upsample: only one of nearest and bilinear");
                mode_given = true;
                c.mode = o.text == "nearest" ? UpsampleMode::nearest : UpsampleMode::bilinear;
            } else if (o.text == "align-corners") {
                if (c.align_corners) p.fail(o.column, "upsample: option 'align-corners' given twice");
                c.align_corners = true;
            } else {
                p.fail(o.column, "upsample: unknown option '" + o.text +
                                     "' (expected nearest, bilinear or align-corners)");
            }
        }
        if (c.align_corners && c.mode != UpsampleMode::bilinear)
            p.fail(p.keyword().column,
                   "upsample: align-corners is for bilinear, e.g. upsample 2 bilinear align-corners");
        return c;
    }
    if (kw == "slice") {
        const Token& t = p.positional(1, "the channels begin:end, e.g. slice 0:58");
        const size_t colon = t.text.find(':');
        if (colon == std::string::npos)
            p.fail(t.column, "slice: expected the channels as begin:end, e.g. 0:58, got '" + t.text + "'");
        const std::string begin = t.text.substr(0, colon);
        ChannelSliceConfig c;
        c.begin = begin == "0" ? 0 : p.integer_in(begin, t.column, "first channel");
        c.end = p.integer_in(t.text.substr(colon + 1), t.column + static_cast<int>(colon) + 1, "end channel");
        if (c.end <= c.begin)
            p.fail(t.column, "slice: the end channel must be after the first, got '" + t.text + "'");
        p.no_more(2);
        return c;
    }
    if (kw == "prelu") {
        PReluConfig c;
        if (p.size() > 1) {
            const Token& t = p.token(1);
            if (t.text != "channels")
                p.fail(t.column, "prelu: unknown option '" + t.text +
                                     "' (expected channels, for one slope per channel: prelu channels)");
            c.per_channel = true;
        }
        p.no_more(2);
        return c;
    }
    if (kw == "layernorm") {
        LayerNormConfig c;
        if (p.size() > 1) {
            const Token& t = p.token(1);
            if (t.text.rfind("eps=", 0) != 0)
                p.fail(t.column,
                       "layernorm: unknown option '" + t.text + "' (expected eps=E, e.g. eps=1e-6)");
            char* end = nullptr;
            const std::string value = t.text.substr(4);
            c.epsilon = std::strtod(value.c_str(), &end);
            if (value.empty() || *end != '\0' || !std::isfinite(c.epsilon) || c.epsilon <= 0.0 ||
                c.epsilon >= 1.0)
                p.fail(t.column + 4,
                       "layernorm: expected eps between 0 and 1 such as 1e-6, got '" + value + "'");
        }
        p.no_more(2);
        return c;
    }
    // The names these read are taken out by the model's parser before this.
    if (kw == "add") {
        AddConfig c;
        if (p.size() > 1) {
            const auto act = p.fused_activation(p.token(1));
            if (!act)
                p.fail(p.token(1).column,
                       "add: unknown option '" + p.token(1).text + "' (expected an activation)");
            c.activation = *act;
        }
        p.no_more(2);
        return c;
    }
    if (kw == "concat" || kw == "mul") {
        p.no_more(1);
        if (kw == "concat") return ConcatConfig{};
        return MulConfig{};
    }
    if (kw == "input") p.fail(p.keyword().column, "input may appear only once, on the first line");
    p.fail(
        p.keyword().column,
        "unknown layer '" + kw +
            "' (expected conv, convtranspose, maxpool, avgpool, globalavgpool, globalmaxpool, "
            "flatten, dense, dropout, batchnorm, "
            "relu, leakyrelu, sigmoid, tanh, softmax, logsoftmax, relu6, hardsigmoid, hardswish, silu, gelu, "
            "elu, prelu, shuffle, slice, layernorm, upsample, add, concat or mul)");
}

// The line that names each value (name=...), so that a use before it can say where it comes.
std::map<std::string, int> name_definitions(const std::string& text) {
    std::map<std::string, int> lines;
    std::istringstream in(text);
    std::string line;
    for (int number = 1; std::getline(in, line); ++number)
        for (const Token& t : tokenize(line))
            if (t.text.rfind("name=", 0) == 0) lines.emplace(t.text.substr(5), number);
    return lines;
}

bool reads_several(const std::string& keyword) {
    return keyword == "add" || keyword == "concat" || keyword == "mul";
}

// What a line reads and how it names its output: name=NAME and from=NAME on any layer, and the names
// an add, concat or mul lists. These tokens are taken out, so the rest parses as a layer of its own.
struct Wiring {
    std::vector<int64_t> inputs;
    std::string name;
};
Wiring take_wiring(LineParser& p, const Model& model, const std::map<std::string, int>& defined_on) {
    const std::string& kw = p.keyword().text;
    const bool merge = reads_several(kw);
    Wiring w;
    auto value_of = [&](const std::string& name, int column) {
        const int64_t v = model.find_value(name);
        if (v >= 0) return v;
        if (!is_value_name(name))
            p.fail(column, kw + ": '" + name + "' is not a name (letters, digits, '_', '-' and '.')");
        const auto later = defined_on.find(name);
        if (later != defined_on.end())
            p.fail(column, kw + ": '" + name + "' is used before it is defined (on line " +
                               std::to_string(later->second) +
                               "); a layer reads only what is written above it");
        p.fail(column, kw + ": unknown name '" + name + "'");
    };
    std::optional<int64_t> from;
    std::vector<Token> rest{p.keyword()};
    for (size_t i = 1; i < p.size(); ++i) {
        const Token& t = p.token(i);
        if (t.text.rfind("name=", 0) == 0) {
            if (!w.name.empty()) p.fail(t.column, kw + ": option 'name' given twice");
            w.name = t.text.substr(5);
            if (!is_value_name(w.name))
                p.fail(t.column + 5,
                       kw + ": '" + w.name + "' is not a name (letters, digits, '_', '-' and '.')");
            if (model.find_value(w.name) >= 0)
                p.fail(t.column + 5,
                       kw + ": the name '" + w.name + "' is already given" +
                           (w.name == "input" ? " (to the model's input)"
                                              : " (on line " + std::to_string(defined_on.at(w.name)) + ")"));
        } else if (t.text.rfind("from=", 0) == 0) {
            if (merge) p.fail(t.column, kw + ": reads the names it lists; from= is for layers of one input");
            if (from) p.fail(t.column, kw + ": option 'from' given twice");
            from = value_of(t.text.substr(5), t.column + 5);
        } else if (merge && t.text.find('=') == std::string::npos && !p.activation(t)) {
            w.inputs.push_back(value_of(t.text, t.column));
        } else {
            rest.push_back(t);
        }
    }
    if (merge) {
        if (w.inputs.size() < 2)
            p.fail(p.end_column(), kw + ": expected two or more names to " +
                                       (kw == "concat" ? "concatenate" : kw) + ", e.g. " + kw + " a b");
        if (kw == "mul" && w.inputs.size() != 2)
            p.fail(p.keyword().column,
                   "mul: expected two names, a value and its gate, got " + std::to_string(w.inputs.size()));
    } else {
        w.inputs.push_back(from ? *from : model.size());
    }
    p.keep_only(std::move(rest));
    return w;
}

}  // namespace

Model parse_model(const std::string& text, const std::string& filename) {
    std::optional<Model> model;
    const std::map<std::string, int> defined_on = name_definitions(text);
    std::istringstream in(text);
    std::string line;
    int number = 0;
    while (std::getline(in, line)) {
        ++number;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        std::vector<Token> tokens = tokenize(line);
        if (tokens.empty()) continue;
        LineParser p(filename, number, std::move(tokens));
        if (!model) {
            if (p.keyword().text != "input")
                p.fail(p.keyword().column,
                       "expected the input size first, e.g. input 28x28x1, got '" + p.keyword().text + "'");
            try {
                model.emplace(parse_input(p));
            } catch (const ShapeError& e) {
                p.fail(p.keyword().column, e.what());
            }
            continue;
        }
        if (model->size() >= kMaxLayers) p.fail(1, "more than " + std::to_string(kMaxLayers) + " layers");
        const Wiring wiring = take_wiring(p, *model, defined_on);
        std::vector<Shape> shapes;
        std::string on;
        for (int64_t v : wiring.inputs) {
            shapes.push_back(model->value_shape(v));
            on += (on.empty() ? "" : " and ") + shapes.back().str();
        }
        std::unique_ptr<Layer> layer;
        try {
            layer = make_layer(parse_layer(p));
            layer->connect(shapes);
            layer->output_shape().elements();
        } catch (const ShapeError& e) {
            p.fail(p.keyword().column, std::string(e.what()) + " (input " + on + ")");
        }
        model->add(std::move(layer), wiring.inputs, wiring.name);
    }
    if (!model)
        throw ParseError(filename + ":1:1: empty model: expected the input size first, e.g. input 28x28x1");
    if (model->size() == 0)
        throw ParseError(filename + ":" + std::to_string(number) +
                         ":1: the model has an input but no layers");
    return std::move(*model);
}

LayerConfig parse_layer_config(const std::string& line) {
    std::vector<Token> tokens = tokenize(line);
    if (tokens.empty()) throw ParseError("empty layer line");
    return parse_layer(LineParser("layer", 1, std::move(tokens)));
}

Model load_model_file(const std::string& path) {
    check_not_directory(path, "a model file");
    std::ifstream f(path, std::ios::binary);
    if (!f) throw IoError(path + ": cannot open the model file");
    std::string text;
    char buf[65536];
    while (f.read(buf, sizeof buf) || f.gcount() > 0) {
        text.append(buf, static_cast<size_t>(f.gcount()));
        if (static_cast<int64_t>(text.size()) > kMaxModelFileBytes)
            throw ParseError(path + ": larger than 8 MB; not a model file?");
    }
    if (text.find('\0') != std::string::npos)
        throw ParseError(path + ": contains NUL bytes; not a text model file");
    return parse_model(text, path);
}

}  // namespace lenz
