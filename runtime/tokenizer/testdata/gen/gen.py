# Generates varied test strings for the GPT-2 tokenizer conformance test. Seeded: deterministic.
import random, json, unicodedata, regex
rng = random.Random(20261129)
words = """the of and to in is was that for it with as his on be at by had are but from or have an they which one
you were her all she there would their we him been has when who will more no if out so said what up its about into than
them can only other new some could time these two may then do first any my now such like our over man me even most made
after also did many before must through back years where much your way well down should because each just those people
Mr how too little state good very make world still own see men work long get here between both life being under never day
same another know while last might us great old year off come since against go came right used take three himself few house
use during without again place around however home small found Mrs thought went say part once general high upon school every
don't does got united left number course war until always away something fact though water less public put think almost hand
enough far took head yet government system better set told nothing night end why called didn't eyes find going look asked later
knew point next program city business give group toward young days let room president side social given present several order
national possible rather second face per among form important often things looking early white case John become large big need
four within felt along children saw best church ever least power development light thing seemed family interest want members
mind country area others done turned although open God service problem certain kind different thus began door help means sense
whole matter perhaps itself York times law human line above name example action company hands local show five history whether
gave either today act feet across taken past quite anything seen having death experience body word half really week field car
transformer attention neuron embedding residual stream logit GPT Neo tokenizer interpretability circuit induction head layer
McDonald iPhone JavaScript PyTorch TensorFlow COVID-19 e-mail re-enter co-operate naïve café résumé façade Zürich São Paulo""".split()
contr = ["'s","'t","'re","'ve","'m","'ll","'d","'S","'T","'RE","'Ll","’s","’t","'"]
punct = list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~") + ["...", "--", "—", "–", "…", "«", "»", "“", "”", "‘", "’", "¿", "¡", "§", "©", "®", "°", "±", "×", "÷", "€", "£", "¥", "•", "→", "≤", "≥", "∞", "∑", "√"]
ws = [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n", "\n ", "\t\t", " \t ", "\u00a0", "\u3000", "\u2009", "\u2028", "\u000b", "\u000c", "    ", "\n\n\n"]
scripts = {
 "greek": "Η γρήγορη καφέ αλεπού πηδάει πάνω από τον τεμπέλη σκύλο",
 "cyrillic": "Съешь же ещё этих мягких французских булок да выпей чаю",
 "arabic": "نص حكيم له سر قاطع وذو شأن عظيم مكتوب على ثوب أخضر",
 "hebrew": "דג סקרן שט בים מאוכזב ולפתע מצא חברה",
 "devanagari": "ऋषियों को सताने वाले दुष्ट राक्षसों के राजा रावण का सर्वनाश करने वाले",
 "cjk": "我能吞下玻璃而不伤身体。敏捷的棕色狐狸跳过了懒狗。",
 "japanese": "いろはにほへと ちりぬるを わかよたれそ つねならむ カタカナ 日本語",
 "korean": "다람쥐 헌 쳇바퀴에 타고파 키스의 고유조건은",
 "thai": "เป็นมนุษย์สุดประเสริฐเลิศคุณค่า",
 "latin": "Falsches Üben von Xylophonmusik quält jeden größeren Zwerg. Voix ambiguë d'un cœur qui au zéphyr préfère les jattes de kiwis. Ĳsselmeer ŁÓDŹ ǅ",
 "math": "∀x∈ℝ: x²≥0 ∧ ∫₀¹ f(x)dx ≈ ½ ⅓ ⅔ Ⅻ ① ⑳ ٣٤٥ ۱۲۳ ४२ 𝟙𝟚𝟛 𝔸𝔹ℂ",
}
emoji = ["😀","😂","🤖","👍","👍🏽","👨‍👩‍👧‍👦","🏳️‍🌈","🇫🇷","🇯🇵","❤️","✨","🔥","🚀","🧠","🫠","☕","⚡","🎉","💯","🙏🏿","🐍","𓀀","🀄","🃏"]
combining = ["e\u0301","a\u0308","n\u0303","o\u0302\u0323","\u0301","Z\u0351\u0352\u0353","ا\u064b","क\u094d\u0937"]
digits = lambda: rng.choice(["0","7","42","123","1234","2024","31415926535","3.14","1,000,000","1e-9","0x1F","12:30","2026-11-29","$19.99","50%","#1","v1.2.3","٣٢١","१२३","Ⅳ","²³","½"])
def word():
    w = rng.choice(words)
    r = rng.random()
    if r < 0.1: w = w.upper()
    elif r < 0.25: w = w.capitalize()
    return w
def sentence():
    parts = []
    for _ in range(rng.randint(3, 18)):
        r = rng.random()
        if r < 0.6: parts.append(word())
        elif r < 0.7: parts.append(digits())
        elif r < 0.78: parts.append(word() + rng.choice(contr))
        elif r < 0.86: parts.append(rng.choice(punct))
        elif r < 0.9: parts.append(rng.choice(emoji))
        elif r < 0.94: parts.append(rng.choice(list(scripts.values())).split()[0])
        else: parts.append(rng.choice(combining))
    out = ""
    for p in parts:
        out += (rng.choice(ws) if rng.random() < 0.15 else ("" if rng.random() < 0.1 else " ")) + p
    end = rng.choice(["", ".", "!", "?", "...", "\n", " ", "  ", "\t", "\n\n", " \n"])
    return out + end
# random code points whose classes agree between Go 15.0 tables and Python regex (exclude newly assigned)
go = {}
for line in open('/tmp/go_cls.txt'):
    a, b = line.split(); go[int(a, 16)] = b
def cls_py(ch):
    return 'S' if regex.match(r'\s', ch) else 'L' if regex.match(r'\p{L}', ch) else 'N' if regex.match(r'\p{N}', ch) else 'O'
def rand_cp():
    while True:
        r = rng.random()
        c = rng.randint(0, 0x7f) if r < 0.3 else rng.randint(0x80, 0x7ff) if r < 0.5 else rng.randint(0x800, 0xffff) if r < 0.8 else rng.randint(0x10000, 0x1ffff)
        if 0xd800 <= c <= 0xdfff: continue
        ch = chr(c)
        if unicodedata.category(ch) == 'Cn': continue  # unassigned in Unicode 14
        if go.get(c, 'O') != cls_py(ch): continue
        return ch
cases = []
fixed = ["", " ", "  ", "\n", "\t", " \n ", "a", "A", "'", "'s", "'S", " 's", "''s", "it's", "IT'S", "I'm you're we've they'll he'd don't can't",
 "Hello world", " Hello world", "Hello world ", "Hello  world", "Hello   world", "  leading", "trailing  ", "\n\nnewlines\n\n", "tab\tsep\tvalues\t",
 "<|endoftext|>", "text<|endoftext|>more", " <|endoftext|> ", "<|endoftext|><|endoftext|>", "a,b,c", ",,,", ", , ,", ",,a,,", "1,2,3,4", "x,,y",
 "\u0085", "a\u0085b", "a \u0085 b", "\ufeff", "\ufeffBOM", "a\ufeffb", "a \ufeff b", "zero\u200bwidth", "nbsp\u00a0here", "ideo\u3000space",
 "a" * 300, " " * 200, "!" * 150, "1" * 120, "ab" * 100, "\n" * 50, "\t \n" * 20, "😀" * 30, "的" * 50,
 "def f(x):\n    return x ** 2  # square\n", "for (int i = 0; i < n; ++i) { a[i] += b[i]; }", "https://example.com/path?q=1&r=2#frag", "user@example.org",
 "The quick brown fox jumps over the lazy dog.", "\r\n\r\nCRLF\r\n", "    indented\n        more\n", "END.\n"]
cases += fixed
for s in scripts.values(): cases.append(s)
for e in emoji: cases.append(e); cases.append("I " + e + " it" + e)
for c in combining: cases.append(c); cases.append(" " + c + "x")
for _ in range(2600): cases.append(sentence())
for _ in range(700):  # random unicode soup
    n = rng.randint(1, 30)
    s = ""
    for _ in range(n):
        r = rng.random()
        s += rand_cp() if r < 0.6 else rng.choice(ws) if r < 0.8 else rng.choice(punct) if r < 0.9 else word()
    cases.append(s)
for _ in range(400):  # whitespace-heavy
    s = ""
    for _ in range(rng.randint(1, 10)):
        s += rng.choice(ws) * rng.randint(1, 4) + rng.choice(["", word(), rng.choice(punct), digits(), rng.choice(contr)])
    cases.append(s)
for _ in range(150):  # paragraphs
    cases.append(" ".join(sentence() for _ in range(rng.randint(2, 6))))
seen = set(); out = []
for c in cases:
    if c not in seen: seen.add(c); out.append(c)
json.dump(out, open('/tmp/ref/strings.json', 'w'), ensure_ascii=False)
print(len(out), sum(len(c.encode()) for c in out))
