"""Input texts for the MiniLM reference data (tests/fixtures/minilm-reference.json).

Kept apart from the script so the long passages do not bury its logic. All text
here was written for this project.
"""

# About 400 words: tokenizes to well over 256 tokens, so it exercises truncation.
LONG_400 = (
    "Lighthouses were once the most important pieces of infrastructure along any "
    "dangerous coast. Before satellite navigation, a sailor approaching land at night "
    "had only charts, a compass, a depth line and whatever lights he could see on the "
    "horizon. Each lighthouse therefore had its own signature: a fixed white light, a "
    "red flash every five seconds, or two quick white flashes followed by a long "
    "pause. Printed lists of these signatures let a navigator identify exactly which "
    "headland he was looking at, even in poor weather. Keeping the lights burning was "
    "hard, lonely work. Keepers trimmed wicks, polished lenses, wound the clockwork "
    "that turned the optics, and recorded the weather every few hours. On remote rock "
    "stations, supply boats could be delayed for weeks by storms, and families learned "
    "to ration flour, coal and lamp oil carefully. Many keepers kept gardens in "
    "sheltered corners, raised goats, or fished from the rocks to make the stores last. "
    "The great technical leap of the nineteenth century was the Fresnel lens, which "
    "used concentric rings of glass prisms to bend light from a single flame into a "
    "narrow, powerful beam. A lens of the largest order could be taller than a person "
    "and weigh several tons, yet it floated on a bath of mercury so that a small weight "
    "could rotate it smoothly through the night. Later, paraffin burners replaced whale "
    "oil, and electric lamps eventually replaced flames altogether. During the "
    "twentieth century, automation gradually removed the need for resident keepers. "
    "Timers, light sensors, backup generators and radio monitoring meant that a single "
    "technician could look after dozens of stations from the mainland. The last keepers "
    "left many towers in the nineteen eighties and nineties, and some of the buildings "
    "fell into disrepair. Today, a surprising number of lighthouses have found new "
    "lives. Some have become museums that display old lenses and logbooks, others are "
    "rented out as holiday cottages, and a few host scientific instruments that measure "
    "sea level, wind speed or bird migration. Volunteers repaint the towers, guide "
    "visitors up the narrow spiral stairs, and tell stories about shipwrecks and "
    "rescues. Although modern ships rely on electronic systems, most maritime "
    "authorities still maintain the lights, because electronics can fail and a bright, "
    "familiar beam on a dark night remains one of the simplest and most reliable "
    "guides a sailor can have. For many coastal communities, the lighthouse is also a "
    "symbol of home, the first thing they see when they return from the sea."
)

# About 1000 words, several paragraphs (joined by newlines, which the tokenizer
# treats as whitespace).
LONG_1000 = "\n\n".join([
    "Starting a vegetable garden in a small backyard is easier than most people "
    "expect, but it rewards a little planning. The first question is light. Most "
    "fruiting vegetables, such as tomatoes, peppers, squash and beans, need at least "
    "six hours of direct sun each day, while leafy greens like lettuce, spinach and "
    "chard tolerate partial shade and may even prefer it in the hottest months. Spend "
    "a weekend noticing where the shadows of fences, trees and buildings fall in the "
    "morning, at noon and in the late afternoon. A corner that looks bright at lunch "
    "can be dark for most of the day.",
    "The second question is soil. Dig a hole about the depth of a spade and look at "
    "what comes out. Dark, crumbly soil that smells earthy is a good sign. Heavy clay "
    "that sticks together in a shiny lump drains slowly and warms late in spring, "
    "while pale sand drains so quickly that nutrients wash away. Both problems have "
    "the same answer: add organic matter, and keep adding it every year. Compost, "
    "well rotted manure, shredded leaves and old straw all improve structure, feed "
    "the worms and fungi that keep soil healthy, and help it hold water without "
    "becoming waterlogged. If the ground is very poor or contaminated, raised beds "
    "filled with a mix of topsoil and compost are a practical alternative.",
    "Next, decide what to grow. The best choices are the vegetables your household "
    "actually likes to eat and that are expensive or hard to find fresh. Herbs are an "
    "excellent start: a few plants of basil, parsley, chives and thyme cost little, "
    "take up almost no room, and save many trips to the shop. Cherry tomatoes are "
    "usually more productive and less fussy than large varieties. Climbing beans and "
    "peas use vertical space on a trellis or fence. Radishes grow from seed to plate "
    "in about a month, which makes them perfect for impatient gardeners and for "
    "children. Courgettes are famously generous, so one or two plants are plenty for "
    "a family; any more and you will be leaving bags of them on the neighbours' "
    "doorsteps by August.",
    "Timing matters as much as choice. Frost kills tender plants, so find the "
    "average date of the last spring frost for your area and count backwards from it. "
    "Seed packets usually say how many weeks before that date to sow indoors, and "
    "when it is safe to plant outside. Hardy crops such as peas, onions, broad beans "
    "and many brassicas can go out early, while tomatoes, peppers, cucumbers and "
    "basil should wait until nights are reliably mild. Young plants raised indoors "
    "need to be hardened off: put them outside for a few hours on the first day, a "
    "little longer on the next, and bring them in at night for about a week, so that "
    "wind and sun do not shock them.",
    "Watering is where many new gardeners go wrong. Frequent light sprinkling keeps "
    "only the surface damp, which encourages shallow roots that suffer as soon as the "
    "weather turns hot. It is better to water deeply and less often, aiming the water "
    "at the base of the plants rather than their leaves, ideally early in the "
    "morning. A layer of mulch, such as straw, grass clippings or compost, slows "
    "evaporation, keeps roots cool and smothers many weeds. Containers are the "
    "exception: pots and grow bags dry out quickly and may need water every day in "
    "summer, sometimes twice.",
    "Pests and diseases are part of every garden, and the goal is balance rather "
    "than a sterile plot. Slugs and snails are the most common complaint in damp "
    "climates; checking plants with a torch on a wet evening and removing the "
    "culprits by hand is tedious but effective. Aphids are often controlled by "
    "ladybirds, lacewings and small birds if you avoid broad spectrum sprays that "
    "kill those allies too. Netting keeps pigeons off cabbages and butterflies from "
    "laying eggs on them. Rotating crops, so that the same family does not grow in "
    "the same bed two years running, reduces the build up of soil borne diseases. "
    "Removing diseased leaves promptly and giving plants enough space for air to "
    "move between them prevents many fungal problems before they start.",
    "Harvesting regularly keeps many plants productive. Beans, courgettes and "
    "cucumbers will slow down if mature fruit is left on the plant, because the plant "
    "has achieved its goal of making seed. Pick them young and tender, and more will "
    "follow. Leafy greens can be harvested a few outer leaves at a time, letting the "
    "centre keep growing for weeks. Root crops are best lifted when they reach a "
    "useful size rather than left to become woody. Keep a simple notebook of what "
    "you planted, when, and how it performed; after two or three seasons it becomes "
    "the most valuable gardening book you own, because it describes your own soil, "
    "your own weather and your own mistakes.",
    "Finally, be patient with yourself. Some crops will fail for reasons that are "
    "never entirely clear, and others will succeed beyond all expectation. A cold, "
    "wet spring might ruin the tomatoes but produce the best lettuce in years. The "
    "pleasure of a garden lies partly in that uncertainty, and partly in small "
    "rituals: the first warm evening spent watering, the smell of crushed tomato "
    "leaves, the surprise of finding a hidden courgette the size of a club under the "
    "foliage. Even a few square metres can supply fresh salads for months, attract "
    "bees and birds, and give a busy person a quiet reason to step outside every "
    "day. Start small, learn from each season, and let the garden grow a little "
    "larger as your confidence does.",
])

# (id, text): ids are stable names for tests to refer to.
INPUTS = [
    ("hello", "Hello world"),
    ("single_char", "a"),
    ("empty", ""),
    ("question_mark", "?"),
    ("pangram", "The quick brown fox jumps over the lazy dog."),
    ("question", "How do I reset my password if I no longer have access to the email account?"),
    ("long_sentence",
     "Although the committee had met on three separate occasions during the spring, it was "
     "not until the final session in late June that the members, tired but finally in "
     "agreement, voted to fund the new library wing, the bicycle lanes along the river, and a "
     "modest program of evening classes for adults."),
    ("punctuation",
     "Wait... what?!? No -- really?? (Yes; really.) \"Quotes\", 'apostrophes', [brackets] & "
     "{braces}!!! ~~~ @#$%^&*"),
    ("contractions", "I can't believe it's already 5 o'clock; we'd better hurry, shouldn't we?"),
    ("accents", "Café crème, naïve façade, jalapeño, Zürich, São Paulo, résumé — déjà vu."),
    ("accents_upper", "ÉCOLE NOËL ÅNGSTRÖM Ça Ñandú"),
    ("german", "Straße, Größe, Donaudampfschiffahrtsgesellschaftskapitän und Fußgängerübergang."),
    ("cjk", "我喜欢在周末去公园散步。東京は日本の首都です。한국어도 조금 할 수 있어요."),
    ("emoji", "I love pizza 🍕 and sunny days ☀️! 😂👍🏽 #blessed"),
    ("cyrillic", "Привет, мир! Как у тебя дела сегодня?"),
    ("arabic", "مرحبا بالعالم، كيف حالك اليوم؟"),
    ("greek_hindi", "Η γρήγορη καφέ αλεπού πηδά. नमस्ते दुनिया"),
    ("numbers_dates",
     "On 2024-03-15 at 14:30 the price rose 3.75% to $1,299.99 (order #48213, qty 12, "
     "due 31/12/2025)."),
    ("code_python", "def add(a, b):\n    return a + b  # x = [i**2 for i in range(10)]"),
    ("code_sql", "SELECT id, name FROM users WHERE age >= 21 AND email LIKE '%@example.com';"),
    ("mixed_case", "ThIs SeNtEnCe HaS wEiRd CaPiTaLiZaTiOn AND SOME SHOUTING, iPhone, McDonald's, NASA."),
    ("whitespace", "  lots   of\tspaces\t\tand\n\nnewlines   here  "),
    ("control_chars", "zero\u200bwidth space, a soft\u00adhyphen, a bell\u0007 and tab\there"),
    ("url",
     "Read the docs at https://example.com/docs/getting-started?lang=en&v=2#install or mail "
     "support@example.org today."),
    ("long_words",
     "Supercalifragilisticexpialidocious antidisestablishmentarianism "
     "pneumonoultramicroscopicsilicovolcanoconiosis"),
    # Longer than WordPiece's max_input_chars_per_word (100): becomes [UNK].
    ("word_over_100_chars", "x" * 120 + " end"),
    ("medical", "Patients receiving 5 mg/kg of the drug twice daily showed a 40% reduction in symptoms."),
    ("long_400_words", LONG_400),
    ("long_1000_words", LONG_1000),
]

# Short inputs whose full last_hidden_state is recorded (pooling 'none').
WITH_HIDDEN_STATES = ["hello", "single_char", "pangram"]
