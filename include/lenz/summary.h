// What a model costs: parameters, multiplications, and memory for one prediction and for training,
// both by the course notes' textbook rule and as this engine really plans it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "lenz/engine.h"
#include "lenz/model.h"

namespace lenz {

struct SummaryOptions {
    int64_t batch = 1;
    int64_t dtype_bytes = 4;  // textbook figures; the engine plans follow where the engine runs the dtype
    std::string dtype = "float32";
    OptimizerKind optimizer = OptimizerKind::adam;
};

struct LayerCost {
    int64_t index;  // 1-based; 0 is the input
    std::string spec, kind;
    Shape output;
    int64_t params, non_trainable, mults, input_grad_mults, weight_grad_mults, other_ops, output_bytes;
    bool allocates;  // false for reshape-only and in-place layers (textbook inference rule)
    std::string param_formula, mult_formula;
    std::string text;                 // the model file's line, with what it reads: "add stem b2 relu"
    std::string value;                // the name of its output ("_3" where the file gives none)
    std::vector<std::string> inputs;  // the names of the values it reads ("input" for the model's)
    int64_t last_read = 0;            // the last layer (1-based) that reads its output
    LayerConfig config{};             // its settings, typed
};
// What a table shows for a layer's output bytes: "(view)" for a flatten, which only renames its
// input and owns no memory, else the bytes with commas. The CLI table and the report agree on it.
std::string output_bytes_text(const LayerCost& cost);

struct Summary {
    SummaryOptions options;
    Shape input;
    int64_t input_bytes = 0;
    std::vector<LayerCost> layers;
    int64_t params = 0, non_trainable = 0, param_bytes = 0, mults = 0;
    int64_t backward_input_mults = 0, backward_weight_mults = 0;  // no input gradient for layer 1
    int64_t other_ops = 0;
    // Textbook: the largest pair of consecutive activations (indices into layers; -1 = the input).
    // For a graph, pair_bytes is the largest total of values alive at one layer, at peak_layer
    // (index into layers), where the values peak_values (value ids; 0 = the input) are alive.
    int64_t pair_first = -1, pair_second = -1, pair_bytes = 0;
    bool graph = false;
    int64_t peak_layer = -1;
    std::vector<int64_t> peak_values;
    int64_t inference_bytes_textbook = 0;
    int64_t training_activation_bytes_per_image = 0;
    int64_t training_bytes_textbook = 0;
    // The engine's own plans, in the precision --dtype names where the engine runs it and this CPU
    // has it (bfloat16: both; int8: inference, which is all int8 runs), float32 otherwise.
    InferencePlan inference_plan;
    TrainingPlan training_plan;
    int threads = 1;
};

Summary summarize(const Model& model, const SummaryOptions& options);
// Options for the textbook figures in `dtype`: "float32", "float16", "bfloat16" or "int8". Throws
// ParseError naming the choices.
SummaryOptions summary_options(int64_t batch, const std::string& dtype, OptimizerKind optimizer);

std::string format_summary(const Summary& s, const std::string& model_name, bool explain);
// What --explain adds to the table: each figure's derivation ("How these figures come about ...").
std::string summary_explanation(const Summary& s);
std::string summary_json(const Summary& s, const std::string& model_name);
std::string summary_csv(const Summary& s);

// Parses "8GB", "512 MB", "1.5GiB", "123456" (bytes). Throws ParseError.
int64_t parse_memory_size(const std::string& text);
// The largest batch whose training plan fits in `bytes`; 0 if not even one image fits.
int64_t largest_batch_that_fits(const Model& model, int64_t bytes, OptimizerKind optimizer);

}  // namespace lenz
