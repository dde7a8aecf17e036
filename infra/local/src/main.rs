fn main() {
    eprintln!("natter-local: not yet");
}
