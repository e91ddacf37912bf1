// modelbuild: a make-like build tool for model artifacts. All logic lives in
// the library; this file only hands argv to it.
#include "cli/commands.h"

int main(int argc, char** argv) { return mb::cli::run(argc, argv); }
