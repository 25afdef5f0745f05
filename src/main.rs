fn main() {
    std::process::exit(arca::cli::run());
}
