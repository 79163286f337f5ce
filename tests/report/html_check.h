// Test helpers for the report's markup: a small well-formedness check (every tag closed, in order)
// and a search for attribute-free text, enough to catch broken SVG/HTML without an XML library.
#pragma once
#include <string>
#include <vector>

namespace lenz::testing {

// Returns "" when every element is closed in order (void HTML elements and self-closing tags
// excepted), or the first problem found.
inline std::string markup_problem(const std::string& text) {
    static const std::vector<std::string> kVoid = {"meta", "img", "br", "hr", "input", "link"};
    std::vector<std::string> open;
    size_t i = 0;
    while ((i = text.find('<', i)) != std::string::npos) {
        const size_t end = text.find('>', i);
        if (end == std::string::npos) return "unterminated tag at " + std::to_string(i);
        const std::string tag = text.substr(i + 1, end - i - 1);
        i = end + 1;
        if (tag.empty()) return "empty tag";
        if (tag[0] == '!') {
            if (tag.rfind("!--", 0) == 0) {  // a comment: skip to its end
                const size_t close = text.find("-->", i - tag.size() - 2);
                if (close == std::string::npos) return "unterminated comment";
                i = close + 3;
            }
            continue;
        }
        if (tag[0] == '/') {
            const std::string name = tag.substr(1);
            if (open.empty() || open.back() != name)
                return "</" + name + "> closes " +
                       (open.empty() ? std::string("nothing") : "<" + open.back() + ">");
            open.pop_back();
            continue;
        }
        const std::string name = tag.substr(0, tag.find_first_of(" \n\t/"));
        if (tag.back() == '/') continue;
        bool is_void = false;
        for (const auto& v : kVoid) is_void |= v == name;
        if (is_void) continue;
        open.push_back(name);
        if (name == "style" || name == "script") {  // raw text up to the closing tag
            const size_t close = text.find("</" + name + ">", i);
            if (close == std::string::npos) return "unclosed <" + name + ">";
            i = close;
        }
    }
    return open.empty() ? "" : "<" + open.back() + "> is never closed";
}

inline int count_of(const std::string& text, const std::string& needle) {
    int n = 0;
    for (size_t i = text.find(needle); i != std::string::npos; i = text.find(needle, i + needle.size())) ++n;
    return n;
}

}  // namespace lenz::testing
