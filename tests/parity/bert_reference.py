"""Reference BERT in plain torch.nn for ddpt's parity test and benchmark.

Follows HuggingFace transformers' BertForPreTraining / BertForMaskedLM /
BertForSequenceClassification / BertForTokenClassification module structure,
so state_dict names and shapes are exactly theirs (the `transformers` package
is not installed here), plus a linear-chain CRF with pytorch-crf's parameter
names and score (the `pytorch-crf` package is not installed either). Written
for this project from the published architectures, not copied.
"""
import math

import torch
from torch import nn


class Config:
    def __init__(self, vocab_size=30522, hidden_size=768, num_hidden_layers=12,
                 num_attention_heads=12, intermediate_size=3072,
                 max_position_embeddings=512, type_vocab_size=2,
                 hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
                 layer_norm_eps=1e-12):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.layer_norm_eps = layer_norm_eps

    def to_json(self):
        d = dict(self.__dict__)
        d["hidden_act"] = "gelu"
        return d


PRESETS = {  # layers, hidden, heads, intermediate
    "bert-tiny": (2, 128, 2, 512),
    "bert-mini": (4, 256, 4, 1024),
    "bert-small": (4, 512, 8, 2048),
    "bert-medium": (8, 512, 8, 2048),
    "bert-base": (12, 768, 12, 3072),
}


def preset(name, **over):
    l, h, nh, i = PRESETS[name]
    return Config(num_hidden_layers=l, hidden_size=h, num_attention_heads=nh,
                  intermediate_size=i, **over)


class BertEmbeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.word_embeddings = nn.Embedding(c.vocab_size, c.hidden_size)
        self.position_embeddings = nn.Embedding(c.max_position_embeddings, c.hidden_size)
        self.token_type_embeddings = nn.Embedding(c.type_vocab_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)

    def forward(self, input_ids, token_type_ids):
        pos = torch.arange(input_ids.shape[1], device=input_ids.device)[None, :]
        x = (self.word_embeddings(input_ids) + self.position_embeddings(pos)
             + self.token_type_embeddings(token_type_ids))
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.nh = c.num_attention_heads
        self.hs = c.hidden_size // c.num_attention_heads
        self.query = nn.Linear(c.hidden_size, c.hidden_size)
        self.key = nn.Linear(c.hidden_size, c.hidden_size)
        self.value = nn.Linear(c.hidden_size, c.hidden_size)
        self.dropout = nn.Dropout(c.attention_probs_dropout_prob)

    def split(self, x):
        b, t, _ = x.shape
        return x.view(b, t, self.nh, self.hs).permute(0, 2, 1, 3)

    def forward(self, x, ext_mask):
        q, k, v = self.split(self.query(x)), self.split(self.key(x)), self.split(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.hs) + ext_mask
        probs = self.dropout(torch.softmax(scores, dim=-1))
        ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous()
        return ctx.view(x.shape)


class BertSelfOutput(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)

    def forward(self, h, x):
        return self.LayerNorm(self.dropout(self.dense(h)) + x)


class BertAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.self = BertSelfAttention(c)
        self.output = BertSelfOutput(c)

    def forward(self, x, ext_mask):
        return self.output(self.self(x, ext_mask), x)


class BertIntermediate(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.intermediate_size)

    def forward(self, x):
        return nn.functional.gelu(self.dense(x))  # exact erf form, HF "gelu"


class BertOutput(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c.intermediate_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)

    def forward(self, h, x):
        return self.LayerNorm(self.dropout(self.dense(h)) + x)


class BertLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.attention = BertAttention(c)
        self.intermediate = BertIntermediate(c)
        self.output = BertOutput(c)

    def forward(self, x, ext_mask):
        a = self.attention(x, ext_mask)
        return self.output(self.intermediate(a), a)


class BertEncoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(c) for _ in range(c.num_hidden_layers)])

    def forward(self, x, ext_mask):
        for layer in self.layer:
            x = layer(x, ext_mask)
        return x


class BertPooler(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.hidden_size)

    def forward(self, x):
        return torch.tanh(self.dense(x[:, 0]))


class BertModel(nn.Module):
    def __init__(self, c, add_pooling_layer=True):
        super().__init__()
        self.embeddings = BertEmbeddings(c)
        self.encoder = BertEncoder(c)
        self.pooler = BertPooler(c) if add_pooling_layer else None

    def forward(self, input_ids, token_type_ids, attention_mask):
        dtype = self.embeddings.word_embeddings.weight.dtype
        ext = (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min
        x = self.encoder(self.embeddings(input_ids, token_type_ids), ext)
        return x, (self.pooler(x) if self.pooler is not None else None)


class BertPredictionHeadTransform(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)

    def forward(self, x):
        return self.LayerNorm(nn.functional.gelu(self.dense(x)))


class BertLMPredictionHead(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.transform = BertPredictionHeadTransform(c)
        self.decoder = nn.Linear(c.hidden_size, c.vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(c.vocab_size))
        self.decoder.bias = self.bias

    def forward(self, x):
        return self.decoder(self.transform(x))


class BertOnlyMLMHead(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.predictions = BertLMPredictionHead(c)

    def forward(self, x):
        return self.predictions(x)


class BertPreTrainingHeads(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.predictions = BertLMPredictionHead(c)
        self.seq_relationship = nn.Linear(c.hidden_size, 2)

    def forward(self, x, pooled):
        return self.predictions(x), self.seq_relationship(pooled)


class BertForPreTraining(nn.Module):
    """Loss = MLM cross-entropy (mean over labelled tokens) + NSP cross-entropy.
    As HuggingFace, the MLM decoder runs at every position."""

    def __init__(self, c):
        super().__init__()
        self.config = c
        self.bert = BertModel(c)
        self.cls = BertPreTrainingHeads(c)
        self.cls.predictions.decoder.weight = self.bert.embeddings.word_embeddings.weight

    def forward(self, input_ids, token_type_ids, attention_mask, labels, next_sentence_label):
        x, pooled = self.bert(input_ids, token_type_ids, attention_mask)
        scores, nsp = self.cls(x, pooled)
        ce = nn.CrossEntropyLoss()  # ignore_index=-100
        mlm = ce(scores.view(-1, self.config.vocab_size), labels.view(-1))
        return mlm + ce(nsp.view(-1, 2), next_sentence_label.view(-1))


class BertForMaskedLM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.config = c
        self.bert = BertModel(c, add_pooling_layer=False)
        self.cls = BertOnlyMLMHead(c)
        self.cls.predictions.decoder.weight = self.bert.embeddings.word_embeddings.weight

    def forward(self, input_ids, token_type_ids, attention_mask, labels, next_sentence_label=None):
        x, _ = self.bert(input_ids, token_type_ids, attention_mask)
        scores = self.cls(x)
        return nn.CrossEntropyLoss()(scores.view(-1, self.config.vocab_size), labels.view(-1))


class BertForSequenceClassification(nn.Module):
    """The pooled [CLS] output, dropout (hidden_dropout_prob, HF's default
    when classifier_dropout is unset), then classifier; loss = cross-entropy,
    mean over the labelled sequences (label -100: none)."""

    def __init__(self, c, num_labels):
        super().__init__()
        self.num_labels = num_labels
        self.bert = BertModel(c)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)
        self.classifier = nn.Linear(c.hidden_size, num_labels)

    def forward(self, input_ids, token_type_ids, attention_mask, labels=None):
        _, pooled = self.bert(input_ids, token_type_ids, attention_mask)
        logits = self.classifier(self.dropout(pooled))
        if labels is None:
            return None, logits
        return nn.CrossEntropyLoss()(logits.view(-1, self.num_labels), labels.view(-1)), logits


class CRF(nn.Module):
    """Linear-chain CRF with pytorch-crf's parameters and score:
    score(y) = start[y_0] + sum_t e_t[y_t] + sum_{t>0} transitions[y_{t-1}, y_t]
    + end[y_last]; NLL = log Z - score(gold), Z by the forward algorithm.

    Each sequence's chain is its labelled positions (label != -100) in order,
    compacted: with first-piece tagging a transition links consecutive words.
    With every position labelled from the start this is pytorch-crf with a
    prefix mask. The loss is the mean NLL over sequences with a non-empty
    chain (pytorch-crf's reduction='mean' over those sequences)."""

    def __init__(self, num_tags):
        super().__init__()
        self.transitions = nn.Parameter(torch.zeros(num_tags, num_tags))
        self.start_transitions = nn.Parameter(torch.zeros(num_tags))
        self.end_transitions = nn.Parameter(torch.zeros(num_tags))

    @staticmethod
    def chains(labels):
        """For each sequence, the positions of its chain."""
        return [[t for t in range(labels.shape[1]) if int(labels[b, t]) != -100]
                for b in range(labels.shape[0])]

    def nll(self, emissions, labels):
        total, count = emissions.new_zeros(()), 0
        for b, pos in enumerate(self.chains(labels)):
            if not pos:
                continue
            e = emissions[b, pos]  # (n, K)
            y = labels[b, pos]
            gold = (self.start_transitions[y[0]] + e[torch.arange(len(pos)), y].sum()
                    + self.transitions[y[:-1], y[1:]].sum() + self.end_transitions[y[-1]])
            alpha = self.start_transitions + e[0]
            for t in range(1, len(pos)):
                alpha = torch.logsumexp(alpha[:, None] + self.transitions, dim=0) + e[t]
            total = total + torch.logsumexp(alpha + self.end_transitions, dim=0) - gold
            count += 1
        return total / max(count, 1)

    @torch.no_grad()
    def decode(self, emissions, chain):
        """Viterbi path of each sequence over the positions where chain != -100;
        a (B, T) tensor, -100 elsewhere."""
        out = torch.full(chain.shape, -100, dtype=torch.long)
        for b, pos in enumerate(self.chains(chain)):
            if not pos:
                continue
            e = emissions[b, pos]
            delta, back = self.start_transitions + e[0], []
            for t in range(1, len(pos)):
                s, arg = (delta[:, None] + self.transitions).max(dim=0)
                back.append(arg)
                delta = s + e[t]
            tag = int((delta + self.end_transitions).argmax())
            path = [tag]
            for arg in reversed(back):
                tag = int(arg[tag])
                path.append(tag)
            out[b, pos] = torch.tensor(path[::-1])
        return out


class BertForTokenClassification(nn.Module):
    """Dropout and classifier on every position of the sequence output (no
    pooler); loss = cross-entropy, mean over the labelled positions, or with
    crf the CRF's mean NLL over the sequences' chains."""

    def __init__(self, c, num_labels, crf=False):
        super().__init__()
        self.num_labels = num_labels
        self.bert = BertModel(c, add_pooling_layer=False)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)
        self.classifier = nn.Linear(c.hidden_size, num_labels)
        self.crf = CRF(num_labels) if crf else None

    def forward(self, input_ids, token_type_ids, attention_mask, labels=None):
        x, _ = self.bert(input_ids, token_type_ids, attention_mask)
        logits = self.classifier(self.dropout(x))
        if labels is None:
            return None, logits
        if self.crf is not None:
            return self.crf.nll(logits, labels), logits
        return nn.CrossEntropyLoss()(logits.view(-1, self.num_labels), labels.view(-1)), logits

    def decode(self, logits, chain):
        if self.crf is not None:
            return self.crf.decode(logits, chain)
        return torch.where(chain != -100, logits.argmax(dim=-1), torch.full_like(chain, -100))


def init_weights(model, std=0.02):
    """BERT's initialisation (HF _init_weights): normal(0, std) weights, zero biases,
    unit LayerNorm gains."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            m.weight.data.normal_(0.0, std)
            if isinstance(m, nn.Linear) and m.bias is not None:
                m.bias.data.zero_()
        elif isinstance(m, nn.LayerNorm):
            m.weight.data.fill_(1.0)
            m.bias.data.zero_()


def synthetic_batch(c, batch, seq_len, generator, pad_step=3, mask_rate=0.15):
    """A batch with padding: sequence b is seq_len - pad_step*b tokens long (at least
    half), segment 1 in its second half, ~mask_rate of its tokens labelled.
    Labels use -100 where not predicted (PyTorch); ddpt uses -1."""
    ids = torch.randint(0, c.vocab_size, (batch, seq_len), generator=generator)
    seg = torch.zeros(batch, seq_len, dtype=torch.long)
    mask = torch.zeros(batch, seq_len, dtype=torch.long)
    labels = torch.full((batch, seq_len), -100, dtype=torch.long)
    for b in range(batch):
        n = max(seq_len // 2, seq_len - pad_step * b)
        mask[b, :n] = 1
        seg[b, n // 2:n] = 1
        ids[b, n:] = 0
        pick = torch.rand(n, generator=generator) < mask_rate
        pick[1] = True
        labels[b, :n][pick] = torch.randint(0, c.vocab_size, (int(pick.sum()),), generator=generator)
    nsp = torch.arange(batch) % 2
    return ids, seg, mask, labels, nsp


def spread_weights(model, seed):
    """Draws model's weights wide (LayerNorm gains 1 + 0.2 N, biases 0.1 N,
    the rest 0.3 N, from torch seed seed), so its predictions are peaked and
    a swapped or transposed tensor moves them; returns the state_dict as
    numpy arrays (tied tensors under each of their names)."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("LayerNorm.weight"):
                p.copy_(1 + 0.2 * torch.randn_like(p))
            else:
                p.copy_((0.1 if name.endswith("bias") else 0.3) * torch.randn_like(p))
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}
