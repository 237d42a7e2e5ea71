// Flags shared by the example programs: --name value pairs with defaults, and --help.
#pragma once

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <string>

namespace examples {

class cli {
public:
    cli(int argc, char** argv, std::map<std::string, std::string> defaults, const char* usage)
        : values_(std::move(defaults)) {
        for (int i = 1; i < argc; ++i) {
            std::string arg = argv[i];
            if (arg == "--help" || arg == "-h") {
                std::cout << usage << "\nflags (default):\n";
                for (const auto& [k, v] : values_) std::cout << "  --" << k << " (" << v << ")\n";
                std::exit(0);
            }
            if (arg.rfind("--", 0) != 0 || !values_.count(arg.substr(2))) fail("unknown flag " + arg, usage);
            if (i + 1 >= argc) fail("missing value for " + arg, usage);
            values_[arg.substr(2)] = argv[++i];
        }
    }

    const std::string& operator[](const std::string& name) const { return values_.at(name); }

private:
    [[noreturn]] static void fail(const std::string& what, const char* usage) {
        std::cerr << what << "\n" << usage << " (--help lists the flags)\n";
        std::exit(2);
    }
    std::map<std::string, std::string> values_;
};

/// Writes the bound port where a script can find it (the demo binds port 0).
inline void write_port_file(const std::string& path, unsigned short port) {
    if (path.empty()) return;
    std::ofstream(path + ".tmp") << port << '\n';
    std::rename((path + ".tmp").c_str(), path.c_str());
}

}  // namespace examples
