"""IOI-style training sentences for neo-tiny (phase 5 of models/train/run_all.sh).

The sentences teach the indirect-object rule ("When Mary and John went to the store, John gave a
drink to" -> " Mary": the answer is the name that appeared once). The *training* templates below
are our own wording and are disjoint from the templates neoscope evaluates with (Wang et al.'s,
in probes/ioi/dataset.go), so the contract figure -- IO preferred on `neoscope ioi`'s prompts -- is
measured on held-out templates, not on memorised ones. Each template is used in both orders
(BABA as written, ABBA with the first two names swapped), so "the first name" or "the second name"
is never the answer by position alone. No template starts with a name, so every name is the
one-token " Name" (a sentence-initial name would be spelled with other tokens).

Names: the tokenizer's forced one-token names (prepare_data.NAMES) plus the one-token names of
neoscope's IOI list (read from the evaluation file written by models/train/ioiprompts).
"""
import numpy as np

TEMPLATES = [
    "Today {S} and {IO} walked to the {PLACE}. {S} handed a {OBJECT} to",
    "Yesterday {S} and {IO} met at the {PLACE}, and {S} passed the {OBJECT} to",
    "Once upon a time {S} and {IO} were sitting in the {PLACE}. Later, {S} threw a {OBJECT} to",
    "At the {PLACE}, {S} and {IO} found a {OBJECT}. {S} showed it to",
    "In the morning {S} and {IO} left the {PLACE}, and {S} sent a {OBJECT} to",
    "Once {S} and {IO} arrived at the {PLACE}, {S} offered a {OBJECT} to",
    "On Monday {S} and {IO} cleaned the {PLACE} together. Then {S} lent a {OBJECT} to",
    "After {S} and {IO} visited the {PLACE}, {S} wrote a letter to",
    "Because {S} and {IO} were late to the {PLACE}, {S} apologized to",
    "So {S} and {IO} talked for hours at the {PLACE}. In the end {S} said goodbye to",
    "Last week {S} and {IO} bought a {OBJECT} at the {PLACE}. {S} gave it to",
    "When {S} and {IO} came home from the {PLACE}, {S} read a story to",
    "Now {S} and {IO} played near the {PLACE}, and {S} tossed the {OBJECT} to",
    "Before {S} and {IO} went to the {PLACE}, {S} sold a {OBJECT} to",
    "On Sunday {S} and {IO} stayed at the {PLACE}. {S} made a {OBJECT} for",
    "Then {S} and {IO} argued about the {OBJECT}, so {S} complained to",
    "One evening {S} and {IO} were hungry at the {PLACE}, so {S} cooked a meal for",
    "As {S} and {IO} waited at the {PLACE}, {S} whispered to",
    "At noon {S} and {IO} shared a table at the {PLACE}. {S} passed the {OBJECT} to",
    "Early today {S} and {IO} ran to the {PLACE}. There {S} returned the {OBJECT} to",
    "Together {S} and {IO} opened a {OBJECT} in the {PLACE}, and {S} smiled at",
    "Since {S} and {IO} worked at the {PLACE}, {S} often brought a {OBJECT} to",
    "In the spring {S} and {IO} carried the {OBJECT} to the {PLACE}. Afterwards {S} thanked",
    "Later that day {S} and {IO} were at the {PLACE}. {S} gave the {OBJECT} back to",
]

PLACES = ["store", "garden", "restaurant", "school", "hospital", "office", "house", "station",
          "market", "church", "park", "library", "kitchen", "city", "field", "temple", "river",
          "village", "castle", "shop"]
OBJECTS = ["ring", "kiss", "bone", "basketball", "computer", "necklace", "drink", "snack",
           "book", "letter", "coin", "gift", "cup", "bag", "flower", "key", "apple", "coat"]


def abba(t):
    """The template with its first two names swapped (IO named first)."""
    i, j = t.index("{S}"), t.index("{IO}")
    return t[:i] + "{IO}" + t[i + 3:j] + "{S}" + t[j + 4:]


def sentences(encode, names, n, seed):
    """n tokenised training sentences, answer and full stop included: template (BABA or ABBA,
    uniform), IO and S two distinct names, place and object uniform; numpy default_rng(seed)."""
    g = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        k = int(g.integers(0, 2 * len(TEMPLATES)))
        t = TEMPLATES[k % len(TEMPLATES)]
        if k >= len(TEMPLATES):
            t = abba(t)
        i, j = g.choice(len(names), 2, replace=False)
        io, s = names[i], names[j]
        text = (t.replace("{S}", s).replace("{IO}", io)
                .replace("{PLACE}", PLACES[int(g.integers(0, len(PLACES)))])
                .replace("{OBJECT}", OBJECTS[int(g.integers(0, len(OBJECTS)))]))
        out.append(np.array(encode(text + " " + io + "."), dtype=np.int64))
    return out


def check_heldout(texts):
    """Asserts that no evaluation prompt could have come from a training template (in either
    order, with any names, places and objects): the IOI figures are on held-out templates."""
    import re
    for t in TEMPLATES + [abba(t) for t in TEMPLATES]:
        pat = re.escape(t)
        for slot in ("S", "IO", "PLACE", "OBJECT"):
            pat = pat.replace(re.escape("{" + slot + "}"), r"\w+")
        rx = re.compile(pat)
        for x in texts:
            assert not rx.fullmatch(x), f"evaluation prompt {x!r} matches training template {t!r}"
