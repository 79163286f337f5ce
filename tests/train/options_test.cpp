// The table of training options (lenz/train_options.h): the defaults it gives are TrainConfig's,
// each default fits its own option and is the one its help names, values are checked against
// ranges and choices with messages that name what is wrong, and a run's record reads back.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <string>

#include "lenz/error.h"
#include "lenz/train_options.h"

namespace lenz {
namespace {

TEST(TrainOptions, TheTableDefaultsAreTrainConfigs) {
    const TrainConfig table = train_config({});
    const TrainConfig plain;
    EXPECT_EQ(table.epochs, plain.epochs);
    EXPECT_EQ(table.batch, plain.batch);
    EXPECT_EQ(table.seed, plain.seed);
    EXPECT_EQ(table.limit_train, plain.limit_train);
    EXPECT_EQ(table.limit_test, plain.limit_test);
    EXPECT_EQ(table.precision, plain.precision);
    EXPECT_EQ(table.optimizer.kind, plain.optimizer.kind);
    EXPECT_EQ(table.optimizer.momentum, plain.optimizer.momentum);
    EXPECT_EQ(table.optimizer.weight_decay, plain.optimizer.weight_decay);
    EXPECT_EQ(table.schedule.kind, plain.schedule.kind);
    EXPECT_EQ(table.schedule.base_lr, plain.schedule.base_lr);
    EXPECT_EQ(table.schedule.warmup_epochs, plain.schedule.warmup_epochs);
    EXPECT_EQ(table.schedule.step_every, plain.schedule.step_every);
    EXPECT_EQ(table.schedule.step_gamma, plain.schedule.step_gamma);
    EXPECT_EQ(table.augment.crop_padding, plain.augment.crop_padding);
    EXPECT_EQ(table.augment.horizontal_flip, plain.augment.horizontal_flip);
    EXPECT_EQ(table.augment.erase_probability, plain.augment.erase_probability);
    EXPECT_EQ(table.augment.max_scale, plain.augment.max_scale);
    EXPECT_EQ(table.loss.label_smoothing, plain.loss.label_smoothing);
    EXPECT_EQ(table.loss.kind, plain.loss.kind);
    // The documented defaults of lenz train: Adam at 0.002, half an epoch of warm-up, cosine, 64.
    EXPECT_EQ(table.optimizer.kind, OptimizerKind::adam);
    EXPECT_EQ(table.schedule.base_lr, 0.002);
    EXPECT_EQ(table.schedule.warmup_epochs, 0.5);
    EXPECT_EQ(table.schedule.kind, ScheduleKind::cosine);
    EXPECT_EQ(table.batch, 64);
}

TEST(TrainOptions, ALearningRateLeftOutFollowsTheOptimizer) {
    EXPECT_EQ(train_config({{"--optimizer", std::string("sgd")}}).schedule.base_lr,
              default_learning_rate(OptimizerKind::sgd));
    EXPECT_EQ(train_config({{"--optimizer", std::string("sgd")}, {"--lr", 0.3}}).schedule.base_lr, 0.3);
    EXPECT_EQ(train_config({{"--lr", int64_t{1}}}).schedule.base_lr, 1.0);  // a whole number is a number
}

TEST(TrainOptions, EachDefaultFitsItsOptionAndIsTheOneItsHelpNames) {
    for (const TrainOption& option : train_options()) {
        EXPECT_EQ(option_problem(option, option.default_value), "") << option.name;
        EXPECT_EQ(&train_option(option.name), &option);
        const std::string help = option.help;
        const size_t at = help.find("(default ");
        const bool number = std::holds_alternative<double>(option.default_value) ||
                            std::holds_alternative<int64_t>(option.default_value);
        if (at == std::string::npos || !number) continue;
        const double said = std::strtod(help.c_str() + at + 9, nullptr);
        const double value = std::holds_alternative<double>(option.default_value)
                                 ? std::get<double>(option.default_value)
                                 : static_cast<double>(std::get<int64_t>(option.default_value));
        EXPECT_EQ(said, value) << option.name << ": " << help;
    }
    EXPECT_EQ(train_option("--weight-decay").keyword(), "weight_decay");
    EXPECT_THROW(train_option("--no-such-option"), Error);
}

TEST(TrainOptions, AValueOutsideItsRangeOrChoicesSaysWhatIsWrong) {
    EXPECT_EQ(option_problem(train_option("--epochs"), int64_t{0}), "must be between 1 and 100000, got 0");
    EXPECT_EQ(option_problem(train_option("--lr"), 0.0), "must be greater than 0, got 0");
    EXPECT_EQ(option_problem(train_option("--lr"), std::monostate{}), "");  // derived
    EXPECT_EQ(option_problem(train_option("--epochs"), std::monostate{}), "needs a value");
    EXPECT_EQ(option_problem(train_option("--seed"), int64_t{-1}), "must be at least 0, got -1");
    EXPECT_EQ(option_problem(train_option("--label-smoothing"), 0.6), "must be between 0 and 0.5, got 0.6");
    EXPECT_EQ(option_problem(train_option("--optimizer"), std::string("adagrad")),
              "'adagrad' is not one of sgd, momentum, nesterov, adam, adamw");
    EXPECT_EQ(option_problem(train_option("--epochs"), 2.5), "expected a whole number");
    EXPECT_EQ(option_problem(train_option("--augment-flip"), int64_t{1}), "expected true or false");
    EXPECT_EQ(option_problem(train_option("--warmup"), std::nan("")), "expected a number, got NaN");
    try {
        train_config({{"--batch", int64_t{0}}});
        FAIL() << "batch 0 taken";
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(), "--batch: must be between 1 and 1048576, got 0");
    }
}

TEST(TrainOptions, ARecordReadsBackAsTheValues) {
    const TrainOptionValues given{{"--epochs", int64_t{3}},
                                  {"--optimizer", std::string("nesterov")},
                                  {"--augment-flip", true},
                                  {"--warmup", 1.25}};
    const TrainOptionValues back = options_from_json(options_json(given));
    EXPECT_EQ(back.size(), train_options().size());  // every option recorded, given or not
    for (const TrainOption& option : train_options())
        EXPECT_EQ(option_value(back, option.name), option_value(given, option.name)) << option.name;
    // Older records: -1 for a learning rate left to the optimizer, a seed written unsigned, options
    // missing; keys the table lacks are the caller's.
    const TrainOptionValues old = options_from_json(R"({"--lr": -1, "--seed": 7, "--data": "mnist"})");
    EXPECT_TRUE(std::holds_alternative<std::monostate>(old.at("--lr")));
    EXPECT_EQ(std::get<int64_t>(old.at("--seed")), 7);
    EXPECT_EQ(old.count("--data"), 0u);
    EXPECT_EQ(old.count("--epochs"), 0u);
}

TEST(TrainOptions, ABadRecordIsAFormatError) {
    for (const char* bad : {R"({"--epochs": "five"})", R"({"--epochs": 0})", R"({"--augment-flip": 1})",
                            R"({"--optimizer": "adagrad"})", "[1, 2]", "{nope"}) {
        EXPECT_THROW(options_from_json(bad), FormatError) << bad;
    }
    try {
        options_from_json(R"({"--batch": 1.5})");
    } catch (const FormatError& e) {
        EXPECT_STREQ(e.what(), "the run's --batch in the metadata has the wrong type");
    }
}

}  // namespace
}  // namespace lenz
