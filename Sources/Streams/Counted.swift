/// `number` of `noun`, for messages: "1 session", "3 sessions" (nouns whose plural adds an s).
package func counted(_ number: Int, _ noun: String) -> String {
    "\(number) \(noun)\(number == 1 ? "" : "s")"
}
