// `lenz summary`: the analysis reads every figure from the layers and the engine's memory plans,
// so what it prints is what runs.
#include "lenz/summary.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/value_graph.h"
#include "lenz/error.h"
#include "lenz/threads.h"

namespace lenz {

std::string output_bytes_text(const LayerCost& cost) {
    return cost.kind == "flatten" ? "(view)" : with_commas(cost.output_bytes);
}

// The notes' rule for a graph (live_peak), in bytes, with the layer and the values at the peak.
static void textbook_peak_of_graph(const Model& model, const ValueGraph& graph, int64_t eb, Summary& s) {
    LivePeak peak = live_peak(model, graph);
    s.pair_bytes = checked_mul(peak.elements, eb, "memory");
    s.peak_layer = peak.layer;
    s.peak_values = std::move(peak.values);
}

Summary summarize(const Model& model, const SummaryOptions& options) {
    if (options.batch <= 0) throw ShapeError("batch must be positive, got " + std::to_string(options.batch));
    Summary s;
    s.options = options;
    s.threads = threads();
    s.input = model.input_shape();
    const int64_t eb = options.dtype_bytes;
    s.input_bytes = checked_mul(s.input.elements(), eb, "input bytes");
    int64_t live_bytes = s.input_bytes;
    int64_t live_index = -1;
    s.pair_bytes = s.input_bytes;
    int64_t per_image = s.input_bytes;
    const ValueGraph graph = analyse(model);
    s.graph = !model.is_chain();
    for (int64_t i = 0; i < model.size(); ++i) {
        const Layer& l = model.layer(i);
        LayerCost c{i + 1,
                    l.spec(),
                    l.kind(),
                    l.output_shape(),
                    l.param_count(),
                    l.state_count(),
                    l.mult_count(),
                    l.input_grad_mults(),
                    l.weight_grad_mults(),
                    l.other_ops(),
                    checked_mul(l.output_shape().elements(), eb, "output bytes"),
                    !graph.view[static_cast<size_t>(i)] && !graph.in_place[static_cast<size_t>(i)],
                    l.param_formula(),
                    l.mult_formula(),
                    model.layer_text(i),
                    model.value_name(i + 1).empty() ? "_" + std::to_string(i + 1) : model.value_name(i + 1),
                    {},
                    graph.last_read[static_cast<size_t>(i + 1)] + 1,
                    l.config()};
        for (int64_t v : model.inputs(i))
            c.inputs.push_back(v == 0                        ? "input"
                               : model.value_name(v).empty() ? "_" + std::to_string(v)
                                                             : model.value_name(v));
        s.params = checked_add(s.params, c.params, "parameters");
        s.non_trainable = checked_add(s.non_trainable, c.non_trainable, "parameters");
        s.mults = checked_add(s.mults, c.mults, "multiplications");
        s.backward_weight_mults =
            checked_add(s.backward_weight_mults, c.weight_grad_mults, "multiplications");
        if (i > 0)
            s.backward_input_mults =
                checked_add(s.backward_input_mults, c.input_grad_mults, "multiplications");
        s.other_ops = checked_add(s.other_ops, c.other_ops, "operations");
        if (c.allocates) {
            const int64_t pair = checked_add(live_bytes, c.output_bytes, "memory");
            if (pair > s.pair_bytes) {
                s.pair_bytes = pair;
                s.pair_first = live_index;
                s.pair_second = i;
            }
        }
        live_bytes = c.output_bytes;
        if (c.allocates || graph.in_place[static_cast<size_t>(i)]) live_index = i;
        if (!graph.view[static_cast<size_t>(i)]) per_image = checked_add(per_image, c.output_bytes, "memory");
        s.layers.push_back(std::move(c));
    }
    if (s.graph) textbook_peak_of_graph(model, graph, eb, s);
    s.param_bytes = checked_mul(s.params, eb, "parameter bytes");
    const int64_t state_bytes = checked_mul(s.non_trainable, eb, "parameter bytes");
    s.inference_bytes_textbook = checked_add(checked_add(s.pair_bytes, s.param_bytes), state_bytes, "memory");
    s.training_activation_bytes_per_image = per_image;
    s.training_bytes_textbook =
        checked_add(checked_mul(options.batch, per_image, "training memory"),
                    checked_add(checked_mul(2, s.param_bytes, "memory"), state_bytes), "training memory");
    const auto engine = [](Precision p) { return cpu_supports(p) ? p : Precision::f32; };
    const Precision trains_in = options.dtype == "bfloat16" ? engine(Precision::bf16) : Precision::f32;
    s.inference_plan =
        plan_inference(model, 1, options.dtype == "int8" ? engine(Precision::int8) : trains_in);
    s.training_plan = plan_training(model, options.batch, options.optimizer, trains_in);
    s.inference_plan.bytes();
    s.training_plan.bytes();
    return s;
}

namespace {

std::string pad_right(const std::string& s, size_t width) {
    return s.size() >= width ? s : s + std::string(width - s.size(), ' ');
}
std::string pad_left(const std::string& s, size_t width) {
    return s.size() >= width ? s : std::string(width - s.size(), ' ') + s;
}
std::string bytes_both(int64_t b) {
    return with_commas(b) + " bytes (" + human_bytes(b) + ")";
}
std::string dims_product(Shape s) {
    return std::to_string(s.h) + "·" + std::to_string(s.w) + "·" + std::to_string(s.c);
}
std::string layer_label(const Summary& s, int64_t index) {
    return index < 0 ? "input"
                     : "layer " + std::to_string(s.layers[static_cast<size_t>(index)].index) + " (" +
                           s.layers[static_cast<size_t>(index)].kind + ")";
}
int64_t f4(int64_t floats) {
    return checked_mul(floats, 4, "memory");
}

void explain(std::ostringstream& o, const Summary& s) {
    const int64_t eb = s.options.dtype_bytes;
    o << "\nHow these figures come about\n";
    o << "\nParameters: per filter, its weights (kernel height · width · input channels) plus one bias;\n"
         "they do not depend on the image size.\n";
    // A grouped convolution's filter sees only its group's channels: the formulas show C/G.
    if (std::any_of(s.layers.begin(), s.layers.end(), [](const LayerCost& c) {
            const auto* conv = std::get_if<Conv2dConfig>(&c.config);
            return conv && conv->groups > 1;
        }))
        o << "A convolution with groups=G splits its input channels into G groups; each filter sees the\n"
             "channels of one group only, so its depth is C/G (1 for a depthwise convolution).\n";
    std::string sum_terms;
    for (const LayerCost& c : s.layers) {
        if (c.params == 0) continue;
        o << "  layer " << c.index << " " << c.kind << ": " << c.param_formula << " = "
          << with_commas(c.params) << "\n";
        sum_terms += (sum_terms.empty() ? "" : " + ") + with_commas(c.params);
    }
    o << "  total: " << (sum_terms.empty() ? "0" : sum_terms) << " = " << with_commas(s.params)
      << " parameters · " << eb << " bytes = " << bytes_both(s.param_bytes) << "\n";
    if (s.non_trainable)
        o << "  plus " << with_commas(s.non_trainable)
          << " non-trainable running statistics (batchnorm mean and variance)\n";

    o << "\nMultiplications (one image, forward): one per weight per output position, padded positions\n"
         "included; so multiplications are not parameters.\n";
    if (std::any_of(s.layers.begin(), s.layers.end(),
                    [](const LayerCost& c) { return std::holds_alternative<UpsampleConfig>(c.config); }))
        o << "Upsampling has no weights: nearest only copies (0 multiplications); bilinear weighs the four\n"
             "input values nearest each output value, 4 multiplications per output value (OH·OW·C · 4,\n"
             "weights of 0 or 1 included), and backward hands each output gradient to the same four.\n";
    if (std::any_of(s.layers.begin(), s.layers.end(),
                    [](const LayerCost& c) { return std::holds_alternative<ConvTransposeConfig>(c.config); }))
        o << "A transposed convolution (convtranspose) has weights C·(F/G)·KH·KW, PyTorch's (C, F/G, KH, "
             "KW),\n"
             "plus F biases. It spreads every input value over the output: each input value is multiplied\n"
             "by each weight it meets, H·W·C · (KH·KW·F/G) with H, W, C its input's. The convolution's\n"
             "\"padded positions included\" has no meaning here: its padding is cropped off the output, and\n"
             "the products that land there are counted all the same. The input gradient (a convolution of\n"
             "dy with the same weights) and the weight gradient form the same products.\n";
    if (std::any_of(s.layers.begin(), s.layers.end(),
                    [](const LayerCost& c) { return std::holds_alternative<PReluConfig>(c.config); }))
        o << "PReLU multiplies a value by its learned slope where the value is negative; which values are\n"
             "depends on the image, so it counts one per value (H·W·C), as a kernel that multiplies them\n"
             "all does. The other activations (elu, softmax, logsoftmax, ...) have no weights: 0.\n";
    for (const LayerCost& c : s.layers) {
        if (c.mults == 0) continue;
        o << "  layer " << c.index << " " << c.kind << ": " << c.mult_formula << " = " << with_commas(c.mults)
          << "\n";
    }
    o << "  total: " << with_commas(s.mults) << " multiplications (MACs: each is one multiply and one add) = "
      << with_commas(checked_mul(2, s.mults)) << " FLOPs\n";
    o << "  backward: input gradients " << with_commas(s.backward_input_mults)
      << " (none for layer 1: nobody needs the gradient of the image) + weight gradients "
      << with_commas(s.backward_weight_mults) << "\n";

    o << "\nActivation sizes (" << s.options.dtype << ", " << eb << " bytes a value):\n";
    o << "  input: " << dims_product(s.input) << " · " << eb << " = " << bytes_both(s.input_bytes) << "\n";
    for (const LayerCost& c : s.layers)
        o << "  layer " << c.index << " " << c.kind << ": " << dims_product(c.output) << " · " << eb << " = "
          << bytes_both(c.output_bytes)
          << (c.allocates           ? ""
              : c.kind == "flatten" ? "  (reshape only: no new memory)"
                                    : "  (in place: no new memory)")
          << "\n";

    if (s.graph) {
        o << "\nOne prediction: a value lives from the layer that writes it until the last layer that reads\n"
             "it; at each layer its inputs, its output and every value a later layer still reads are alive\n"
             "at once. Outputs are NOT added up, but a skip connection keeps its value alive:\n";
        for (const LayerCost& c : s.layers)
            if (c.last_read > c.index + 1 && c.last_read <= static_cast<int64_t>(s.layers.size()))
                o << "  " << c.value << " (layer " << c.index << ") stays alive until layer " << c.last_read
                  << " (" << s.layers[static_cast<size_t>(c.last_read - 1)].kind << ") reads it\n";
        if (s.peak_layer >= 0) {
            std::string terms, names;
            for (int64_t v : s.peak_values) {
                const int64_t bytes =
                    v == 0 ? s.input_bytes : s.layers[static_cast<size_t>(v - 1)].output_bytes;
                terms += (terms.empty() ? "" : " + ") + with_commas(bytes);
                names += (names.empty() ? "" : ", ") +
                         (v == 0 ? std::string("input") : s.layers[static_cast<size_t>(v - 1)].value);
            }
            o << "  peak at layer " << s.peak_layer + 1 << " ("
              << s.layers[static_cast<size_t>(s.peak_layer)].kind << "), alive: " << names
              << "\n    = " << terms << " = " << with_commas(s.pair_bytes) << " bytes\n";
        }
    } else {
        o << "\nOne prediction: once a layer's output is computed its input can be released, so at most two\n"
             "consecutive activations live at once. Outputs are NOT added up.\n";
    }
    if (!s.graph && s.pair_second >= 0) {
        const int64_t first =
            s.pair_first < 0 ? s.input_bytes : s.layers[static_cast<size_t>(s.pair_first)].output_bytes;
        o << "  largest pair: " << layer_label(s, s.pair_first) << " + " << layer_label(s, s.pair_second)
          << " = " << with_commas(first) << " + "
          << with_commas(s.layers[static_cast<size_t>(s.pair_second)].output_bytes) << " = "
          << with_commas(s.pair_bytes) << " bytes\n";
    }
    o << "  + parameters " << with_commas(s.param_bytes);
    if (s.non_trainable) o << " + running statistics " << with_commas(s.non_trainable * eb);
    o << " = " << bytes_both(s.inference_bytes_textbook) << "\n";

    o << "\nTraining: backpropagation needs every intermediate result, so the outputs ARE added up, for\n"
         "every image of the batch; then one gradient per parameter.\n";
    std::string terms = with_commas(s.input_bytes);
    for (const LayerCost& c : s.layers)
        if (c.kind != "flatten") terms += " + " + with_commas(c.output_bytes);
    o << "  per image: " << terms << " = " << with_commas(s.training_activation_bytes_per_image)
      << " bytes\n";
    o << "  · batch " << s.options.batch << " = "
      << with_commas(s.options.batch * s.training_activation_bytes_per_image) << "\n";
    o << "  + parameters " << with_commas(s.param_bytes) << " + gradients " << with_commas(s.param_bytes);
    if (s.non_trainable) o << " + running statistics " << with_commas(s.non_trainable * eb);
    o << " = " << bytes_both(s.training_bytes_textbook) << "\n";

    const Precision inferred = s.inference_plan.precision, trained = s.training_plan.precision;
    o << "\nEngine plan (" << precision_name(inferred);
    if (trained != inferred) o << " inference, " << precision_name(trained) << " training";
    o << ", " << s.threads << " threads): what Lenz really allocates.\n";
    const InferencePlan& ip = s.inference_plan;
    o << "  one prediction: arena " << with_commas(f4(ip.arena_floats))
      << (s.graph ? " (each value placed in the arena for its lifetime, beside those alive with it)\n"
                  : " (the largest pair; outputs go to the arena's two ends in turn)\n")
      << "    + workspace " << with_commas(f4(ip.workspace_floats))
      << " (oneDNN's reordered copies and scratchpad; it does not grow with the batch)\n"
      << "    + parameters " << with_commas(f4(ip.param_floats));
    if (ip.prepared_floats)
        o << "\n    + packed weights " << with_commas(f4(ip.prepared_floats))
          << (inferred == Precision::int8
                  ? " (convolution and dense weights in int8, as oneDNN's kernels read them, with their "
                    "scales)"
                  : " (weights laid out once as the kernels read them)");
    o << " = " << bytes_both(ip.bytes()) << "\n";
    const TrainingPlan& tp = s.training_plan;
    const int copies = optimizer_state_copies(s.options.optimizer);
    o << "  training: the textbook terms, plus optimizer state (" << copies << " cop"
      << (copies == 1 ? "y" : "ies") << " of the parameters for " << optimizer_name(s.options.optimizer)
      << "),\n"
      << "    what layers save for backward and the kernels' workspace; each activation's gradient\n"
      << "    overwrites the activation itself once backward has used it = " << bytes_both(tp.bytes())
      << "\n";
}

}  // namespace

std::string format_summary(const Summary& s, const std::string& model_name, bool explain_too) {
    std::ostringstream o;
    o << "Model " << model_name << ": input " << s.input.str() << ", "
      << count_of(static_cast<int64_t>(s.layers.size()), "layer") << "\n\n";
    const size_t wname = 44;
    o << pad_left("#", 3) << "  " << pad_right("layer", wname) << pad_right("output", 14)
      << pad_left("params", 12) << pad_left("mults (MACs)", 17) << pad_left("output bytes", 15) << "\n";
    o << pad_left("0", 3) << "  " << pad_right("input", wname) << pad_right(s.input.str(), 14)
      << pad_left("-", 12) << pad_left("-", 17) << pad_left(with_commas(s.input_bytes), 15) << "\n";
    for (const LayerCost& c : s.layers) {
        const std::string name = c.text.size() > wname - 2 ? c.text.substr(0, wname - 5) + "..." : c.text;
        o << pad_left(std::to_string(c.index), 3) << "  " << pad_right(name, wname)
          << pad_right(c.output.str(), 14) << pad_left(c.params ? with_commas(c.params) : "-", 12)
          << pad_left(c.mults ? with_commas(c.mults) : "-", 17) << pad_left(output_bytes_text(c), 15) << "\n";
    }
    const int64_t eb = s.options.dtype_bytes;
    o << "\nParameters        " << with_commas(s.params) << " trainable";
    if (s.non_trainable) o << " + " << with_commas(s.non_trainable) << " non-trainable";
    o << " = " << bytes_both(s.param_bytes + s.non_trainable * eb) << " as " << s.options.dtype << "\n";
    o << "Multiplications   " << with_commas(s.mults) << " MACs = " << with_commas(checked_mul(2, s.mults))
      << " FLOPs per image, forward\n";
    o << "  backward        " << with_commas(s.backward_input_mults) << " for input gradients + "
      << with_commas(s.backward_weight_mults) << " for weight gradients\n";
    o << "  other ops       " << with_commas(s.other_ops) << " (bias adds, comparisons, pooling sums)\n";
    o << "\nOne prediction    textbook " << bytes_both(s.inference_bytes_textbook) << "\n";
    const InferencePlan& ip = s.inference_plan;
    o << "                  plan     " << bytes_both(ip.bytes()) << " = arena "
      << with_commas(f4(ip.arena_floats)) << " + workspace " << with_commas(f4(ip.workspace_floats))
      << " + parameters " << with_commas(f4(ip.param_floats));
    if (ip.prepared_floats) o << " + packed weights " << with_commas(f4(ip.prepared_floats));
    o << "\n";
    const TrainingPlan& tp = s.training_plan;
    o << "Training, batch " << s.options.batch << "  textbook " << bytes_both(s.training_bytes_textbook)
      << "\n";
    o << "                  plan     " << bytes_both(tp.bytes()) << " with "
      << optimizer_name(s.options.optimizer) << ":\n";
    auto row = [&](const char* what, int64_t floats, const char* why) {
        o << "    " << pad_right(what, 22) << pad_left(with_commas(f4(floats)), 16) << "  " << why << "\n";
    };
    row("weights", tp.param_floats, "");
    row("gradients", tp.gradient_floats, "one per trainable parameter");
    row("optimizer state", tp.optimizer_floats,
        optimizer_state_copies(s.options.optimizer) == 2   ? "two moments per parameter"
        : optimizer_state_copies(s.options.optimizer) == 1 ? "momentum per parameter"
                                                           : "none");
    row("input batch", tp.input_floats, "");
    row("activations", tp.activation_floats, "every layer's output, kept for backward");
    if (tp.value_gradient_floats)
        row("shared gradients", tp.value_gradient_floats,
            "of values several layers read: their shares add up");
    row("saved for backward", tp.saved_floats, "dropout masks, batchnorm statistics");
    row("workspace", tp.workspace_floats, "kernel scratch: reordered copies, dx of one chunk of images");
    o << (tp.value_gradient_floats
              ? "    (other gradients of activations overwrite the activations they belong to)\n"
              : "    (gradients of activations overwrite the activations they belong to: no extra "
                "buffers)\n");
    o << "(plan for " << s.threads << " thread" << (s.threads == 1 ? "" : "s")
      << "; 1 MB = 1,000,000 bytes)\n";
    if (explain_too) explain(o, s);
    return o.str();
}

SummaryOptions summary_options(int64_t batch, const std::string& dtype, OptimizerKind optimizer) {
    SummaryOptions o;
    o.batch = batch;
    o.dtype = dtype;
    o.dtype_bytes = dtype == "float32"                          ? 4
                    : dtype == "float16" || dtype == "bfloat16" ? 2
                    : dtype == "int8"                           ? 1
                                                                : 0;
    if (o.dtype_bytes == 0)
        throw ParseError("unknown dtype '" + dtype + "' (expected float32, float16, bfloat16 or int8)");
    o.optimizer = optimizer;
    return o;
}

std::string summary_explanation(const Summary& s) {
    std::ostringstream o;
    explain(o, s);
    return o.str();
}

std::string summary_json(const Summary& s, const std::string& model_name) {
    using nlohmann::json;
    json layers = json::array();
    for (const LayerCost& c : s.layers)
        layers.push_back({{"index", c.index},
                          {"name", c.spec},
                          {"value", c.value},
                          {"inputs", c.inputs},
                          {"kind", c.kind},
                          {"output_shape", {c.output.h, c.output.w, c.output.c}},
                          {"params", c.params},
                          {"non_trainable_params", c.non_trainable},
                          {"mults", c.mults},
                          {"backward_input_mults", c.index == 1 ? 0 : c.input_grad_mults},
                          {"backward_weight_mults", c.weight_grad_mults},
                          {"other_ops", c.other_ops},
                          {"output_bytes", c.output_bytes}});
    const InferencePlan& ip = s.inference_plan;
    const TrainingPlan& tp = s.training_plan;
    json j = {{"model", model_name},
              {"input_shape", {s.input.h, s.input.w, s.input.c}},
              {"input_bytes", s.input_bytes},
              {"layers", layers},
              {"params", s.params},
              {"non_trainable_params", s.non_trainable},
              {"param_bytes", s.param_bytes},
              {"mults", s.mults},
              {"flops", 2 * s.mults},
              {"backward_input_mults", s.backward_input_mults},
              {"backward_weight_mults", s.backward_weight_mults},
              {"other_ops", s.other_ops},
              {"inference_bytes_textbook", s.inference_bytes_textbook},
              {"inference_bytes_plan", ip.bytes()},
              {"inference_plan_dtype", precision_name(ip.precision)},
              {"training_plan_dtype", precision_name(tp.precision)},
              {"inference_plan",
               {{"arena", f4(ip.arena_floats)},
                {"workspace", f4(ip.workspace_floats)},
                {"params", f4(ip.param_floats)},
                {"packed_weights", f4(ip.prepared_floats)}}},
              {"training_bytes_textbook", s.training_bytes_textbook},
              {"training_bytes_plan", tp.bytes()},
              {"training_plan",
               {{"weights", f4(tp.param_floats)},
                {"gradients", f4(tp.gradient_floats)},
                {"optimizer_state", f4(tp.optimizer_floats)},
                {"input_batch", f4(tp.input_floats)},
                {"activations", f4(tp.activation_floats)},
                {"shared_gradients", f4(tp.value_gradient_floats)},
                {"saved_for_backward", f4(tp.saved_floats)},
                {"workspace", f4(tp.workspace_floats)}}},
              {"batch", s.options.batch},
              {"dtype", s.options.dtype},
              {"optimizer", optimizer_name(s.options.optimizer)},
              {"threads", s.threads}};
    return j.dump(2);
}

// One row per layer, as JSON's `layers`: the input is no layer (its shape and bytes are in the JSON).
std::string summary_csv(const Summary& s) {
    std::ostringstream o;
    o << "index,name,kind,output_h,output_w,output_c,params,non_trainable_params,mults,backward_input_mults,"
         "backward_weight_mults,output_bytes\n";
    for (const LayerCost& c : s.layers)
        o << c.index << ",\"" << c.spec << "\"," << c.kind << "," << c.output.h << "," << c.output.w << ","
          << c.output.c << "," << c.params << "," << c.non_trainable << "," << c.mults << ","
          << (c.index == 1 ? 0 : c.input_grad_mults) << "," << c.weight_grad_mults << "," << c.output_bytes
          << "\n";
    return o.str();
}

int64_t parse_memory_size(const std::string& text) {
    std::string t;
    for (char ch : text)
        if (!std::isspace(static_cast<unsigned char>(ch))) t += ch;
    size_t end = 0;
    while (end < t.size() && (std::isdigit(static_cast<unsigned char>(t[end])) || t[end] == '.')) ++end;
    const std::string number = t.substr(0, end);
    std::string unit = t.substr(end);
    for (char& ch : unit) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    double scale = 0;
    if (unit.empty() || unit == "B")
        scale = 1;
    else if (unit == "KB" || unit == "K")
        scale = 1e3;
    else if (unit == "MB" || unit == "M")
        scale = 1e6;
    else if (unit == "GB" || unit == "G")
        scale = 1e9;
    else if (unit == "TB" || unit == "T")
        scale = 1e12;
    else if (unit == "KIB")
        scale = 1024.0;
    else if (unit == "MIB")
        scale = 1024.0 * 1024;
    else if (unit == "GIB")
        scale = 1024.0 * 1024 * 1024;
    else if (unit == "TIB")
        scale = 1024.0 * 1024 * 1024 * 1024;
    char* stop = nullptr;
    const double v = number.empty() ? -1 : std::strtod(number.c_str(), &stop);
    if (scale == 0 || v <= 0 || (stop && *stop) || !std::isfinite(v * scale) || v * scale > 9.0e18)
        throw ParseError("memory size '" + text +
                         "': expected a number and a unit such as 8GB, 512MB or 1.5GiB");
    return static_cast<int64_t>(v * scale);
}

int64_t largest_batch_that_fits(const Model& model, int64_t bytes, OptimizerKind optimizer) {
    auto fits = [&](int64_t batch) {
        try {
            return plan_training(model, batch, optimizer).bytes() <= bytes;
        } catch (const ShapeError&) {
            return false;  // overflowed 64 bits: certainly does not fit
        }
    };
    if (!fits(1)) return 0;
    int64_t lo = 1, hi = 2;
    while (hi < (int64_t{1} << 40) && fits(hi)) {
        lo = hi;
        hi *= 2;
    }
    while (hi - lo > 1) {
        const int64_t mid = lo + (hi - lo) / 2;
        (fits(mid) ? lo : hi) = mid;
    }
    return lo;
}

}  // namespace lenz
