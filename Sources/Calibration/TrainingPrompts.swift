/// Extra prompts that only train exit blocks (never used to pick thresholds or to report): chat
/// requests written from templates over a topic list, and passages of a text file to continue.
/// Trained exits are data-limited (train loss far below validation), and the full model's own
/// answers to more, different prompts are the cheapest data there is.
public enum TrainingPrompts {
    static let topics = [
        "the ocean", "volcanoes", "the moon", "honey bees", "rainforests", "the human heart", "electricity", "glaciers",
        "the Roman Empire", "ancient Egypt", "the printing press", "airplanes", "trains", "the internet", "smartphones",
        "coffee", "bread", "chocolate", "tea", "rice", "apples", "dolphins", "elephants", "owls", "wolves", "penguins",
        "butterflies", "spiders", "sharks", "horses", "cats", "dogs", "the solar system", "black holes", "comets",
        "earthquakes", "thunderstorms", "snow", "deserts", "rivers", "mountains", "forests", "islands", "cities",
        "libraries", "museums", "music", "painting", "football", "chess", "swimming", "running", "gardening", "cooking",
        "friendship", "kindness", "patience", "courage", "sleep", "exercise", "recycling", "solar power", "wind power",
        "batteries", "magnets", "microscopes", "telescopes", "bridges", "castles", "pyramids", "the Olympic Games",
        "birthdays", "winter", "summer", "autumn", "spring", "the alphabet", "numbers", "fractions", "maps",
        "the weather", "clouds", "rainbows", "the wheel", "clocks", "money", "banks", "newspapers", "photography",
        "robots", "computers", "video games", "dinosaurs", "fossils", "the brain", "teeth", "vitamins", "water",
        "salt", "sugar", "plastic", "paper", "glass", "trees", "flowers", "mushrooms", "seeds", "farms", "markets",
    ]

    static let templates = [
        "Explain {} in simple terms.", "Write a short poem about {}.", "Give me three interesting facts about {}.",
        "Describe {} in two sentences.", "Why is {} important?", "Write a short story about {}.",
        "What is the history of {}?", "List four words that describe {}.", "Write a haiku about {}.",
        "Explain {} to a ten-year-old.", "What are the pros and cons of {}?", "Write a short paragraph about {}.",
        "Give me a fun fact about {}.", "How would you teach a child about {}?", "Summarize what people know about {}.",
    ]

    /// Every request, in an order that mixes templates and topics, without the built-in prompts (the
    /// held-out parts must stay unseen).
    static let allRequests: [String] = {
        let all = templates.count * topics.count
        // Step through the template x topic grid with a stride coprime to its size, so a prefix
        // covers many templates and topics.
        let step = TrainingPrompts.stride(coprimeTo: all)
        let builtIn = Set(CalibrationPromptSet.instructions + CalibrationPromptSet.questions)
        return (0..<all).map { i in
            let cell = (i * step) % all
            return templates[cell % templates.count].replacingOccurrences(of: "{}", with: topics[cell / templates.count])
        }.filter { !builtIn.contains($0) }
    }()

    /// How many different requests `requests(count:)` can write.
    public static var requestCount: Int { allRequests.count }

    /// Up to `count` chat requests.
    public static func requests(count: Int) -> [String] { Array(allRequests.prefix(max(0, count))) }

    /// Up to `count` openings from `text`: runs of about `words` words that start at a sentence
    /// start, spread evenly over the text (the model continues each).
    public static func passages(from text: String, count: Int, words: Int = 40) -> [String] {
        let tokens = text.split(whereSeparator: \.isWhitespace)
        guard count > 0, tokens.count > words else { return [] }
        let starts = tokens.indices.filter { i in
            i == 0 || (tokens[i - 1].last.map { ".!?".contains($0) } ?? false) && (tokens[i].first?.isUppercase ?? false)
        }.filter { $0 + words <= tokens.count }
        guard !starts.isEmpty else { return [] }
        let picked = (0..<min(count, starts.count)).map { starts[$0 * starts.count / min(count, starts.count)] }
        return picked.map { tokens[$0..<$0 + words].joined(separator: " ") }
    }

    private static func stride(coprimeTo n: Int) -> Int {
        func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }
        var s = 37
        while gcd(s, n) != 1 { s += 1 }
        return s
    }
}
