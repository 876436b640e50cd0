/// Open-ended chat prompts (instructions and short summaries of passages written for this project).
/// There is no single right answer: they are scored against the full model's own response.
package enum InstructionSet {
    package static let prompts: [String] = [
        "Write a haiku about the sea.",
        "Name three primary colors.",
        "Give three tips for staying healthy.",
        "Explain in two sentences what photosynthesis is.",
        "Write a short story about a robot who learns to paint.",
        "What are the benefits of reading books?",
        "Describe a sunny day at the beach.",
        "How do I make a cup of tea?",
        "Why is exercise important?",
        "Write a friendly email inviting a colleague to lunch.",
        """
        Summarize in one sentence: The village library had been closed for years. When a retired teacher \
        found the key, she cleaned the shelves, asked neighbours for books and opened the doors every Saturday. \
        Soon children came to read, and the old building was full of voices again.
        """,
        """
        Summarize in one sentence: A small bakery started selling bread made with local grain. Farmers nearby \
        earned more for their harvest, customers liked the taste, and within a year three other shops in the \
        town copied the idea.
        """,
        """
        Summarize in one sentence: The team tested the bridge model in a wind tunnel. At low speeds it stayed \
        still, but at high speeds it began to twist, so the engineers added heavier supports and tested it again \
        until it no longer moved.
        """,
        """
        Summarize in one sentence: After the storm, the river rose over its banks and flooded the fields. The \
        farmers moved their animals to the hills, and when the water went down they found the soil richer than before.
        """,
        "List the four seasons of the year.",
        "What should I pack for a weekend camping trip?",
    ]
}
