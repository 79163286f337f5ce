// The options of a training run, in one table: `lenz train` registers its options from it, Python's
// Model.fit takes its keywords and defaults from it, and checkpoints record a run's values by it so
// that --resume takes them up. A default is documented once, here.
#pragma once
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "lenz/train.h"

namespace lenz {

// std::monostate: not given, so derived (the learning rate follows the optimizer).
using OptionValue = std::variant<std::monostate, int64_t, double, std::string, bool>;

struct TrainOption {
    enum class Type { integer, real, text, flag };
    const char* name;  // the command line's spelling, "--weight-decay"; Python's keyword is "weight_decay"
    Type type;
    OptionValue default_value;
    double min = 0, max = 0;     // numbers: the inclusive range (max may be infinite), unless min_exclusive
    bool min_exclusive = false;  // the value must be above min ("--lr": above 0)
    std::vector<std::string> choices;  // text: the values taken (empty: any)
    const char* help;
    std::string keyword() const;  // "weight_decay"
};

// Every option, in the order `lenz train --help` lists them.
const std::vector<TrainOption>& train_options();
// The option of that name ("--lr"); throws Error for a name the table lacks.
const TrainOption& train_option(const std::string& name);

// Values by the options' names; an option left out takes its default.
using TrainOptionValues = std::map<std::string, OptionValue>;
// What the option takes: "a whole number", "a number", "a string", "true or false".
std::string expected_value(const TrainOption& option);
// "" where `value` fits `option` (its type, range and choices), else what is wrong, for a message
// that names the option: "must be between 1 and 100000, got 0".
std::string option_problem(const TrainOption& option, const OptionValue& value);
// The value of `name` in `values`, or its default.
const OptionValue& option_value(const TrainOptionValues& values, const std::string& name);

// The values as a JSON object, by the command line's names: every option of the table, its default
// where `values` leaves it out (null for one that is derived). What a checkpoint records of a run.
std::string options_json(const TrainOptionValues& values);
// The table's options in a recorded JSON object (what options_json wrote, or an older checkpoint's
// record); keys the table lacks are left out, as are options the record lacks. Throws FormatError
// ("the run's --lr in the metadata has the wrong type") for a value that does not fit its option.
TrainOptionValues options_from_json(const std::string& object_text);

// The run `values` describe: epochs, batch, seed, limits, precision, optimizer, schedule,
// augmentation and label smoothing (the rest of TrainConfig, such as the output folder and the
// callbacks, is the caller's). Throws Error("NAME: PROBLEM") for a value that does not fit.
TrainConfig train_config(const TrainOptionValues& values);

}  // namespace lenz
