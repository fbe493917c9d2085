fn main() {
    std::process::exit(zbx_conform::cli::main());
}
