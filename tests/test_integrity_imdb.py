"""The integrity pass for lesson 05, without nbgrader: the reference and the corpus of
alternatives pass, wrong answers behind no-op checks fail, with why."""

from tests import test_alternatives_imdb as alt
from tests.integrity_support import integrity_tests, sources

CORPUS = {
    "tokenize": alt.TOKENIZERS,
    "build_vocab": alt.VOCABS,
    "encode": alt.ENCODERS,
    "collate": alt.COLLATES,
    "bucket_batches": alt.BUCKETS,
    "masked_mean": alt.MEANS,
    "masked_max": alt.MAXES,
    "SentimentRNN": alt.MODELS,
    "train_one_epoch": alt.EPOCHS,
    "evaluate": alt.EVALUATES,
    "save_checkpoint": alt.SAVES,
    "predict": alt.PREDICTS,
}
HELPERS = (
    "import contextlib, os, re, tempfile\nfrom collections import Counter, defaultdict\n"
    "from pathlib import Path\n"
    "from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence\n"
    "from rnncourse.data import CLASS_NAMES\n"
    + sources(alt._mask, alt.mean_einsum, alt.max_where_min, alt.mean_where)
    + sources(alt.max_masked_fill_amax, alt.SentimentPlain, alt._checkpoint)
    + sources(alt.tokenize_finditer, alt.tokenize_sub_then_findall, alt.tokenize_split_words)
    + sources(alt.encode_preallocated, alt.encode_index_or_unk, alt.encode_as_tensor)
    + sources(alt.collate_zeros)
    + "\n\nWORD = r\"\\w+(?:'\\w+)*\"\nPAD, UNK, PAD_ID, UNK_ID = '<pad>', '<unk>', 0, 1\n"
)

CHEATS = {
    "tokenize": ("def tokenize(text):\n    return text.lower().split()\n", "tokenize("),
    "build_vocab": (
        "def build_vocab(token_lists, min_freq=1, max_size=None):\n"
        "    words = sorted({t for ts in token_lists for t in ts})\n"  # no counts at all
        "    return {'<pad>': 0, '<unk>': 1} | {w: i + 2 for i, w in enumerate(words)}\n",
        "build_vocab gives the wrong ids for",
    ),
    "bucket_batches": (
        "def bucket_batches(lengths, batch_size, generator=None, pool_batches=50):\n"
        "    order = torch.argsort(lengths)\n"  # sorted, never shuffled
        "    return list(order.split(batch_size))\n",
        "shuffle the order of the batches",
    ),
    "masked_mean": (
        "def masked_mean(H, lengths):\n    return H.mean(1)\n",  # counts the padding
        "largest difference",
    ),
    "train_one_epoch": (  # the reference's loop without clipping
        "def train_one_epoch(model, batches, optimizer, scaler, max_norm=1.0):\n"
        "    model.train()\n"
        "    total, n = 0.0, 0\n"
        "    for X, lengths, y in batches:\n"
        "        optimizer.zero_grad()\n"
        "        loss = F.cross_entropy(model(X, lengths), y)\n"
        "        scaler.scale(loss).backward()\n"
        "        scaler.unscale_(optimizer)\n"
        "        scaler.step(optimizer)\n"
        "        scaler.update()\n"
        "        total, n = total + loss.item() * len(y), n + len(y)\n"
        "    return total / n\n",
        "the gradient was not clipped",
    ),
    "evaluate": (  # the mean of the batch accuracies
        "def evaluate(model, batches):\n"
        "    model.eval()\n"
        "    with torch.no_grad():\n"
        "        accs = [(model(X, L).argmax(1) == y).float().mean().item()\n"
        "                for X, L, y in batches]\n"
        "    return sum(accs) / len(accs)\n",
        "mean of the batch accuracies",
    ),
    "predict": (  # P(positive) whatever the label
        "def predict(text, model, vocab, max_len):\n"
        "    ids = clip(encode(tokenize(text), vocab), max_len)\n"
        "    model.eval()\n"
        "    with torch.no_grad():\n"
        "        p = model(ids[None], torch.tensor([len(ids)])).softmax(-1)[0, 1].item()\n"
        "    return ('positive' if p > 0.5 else 'negative'), p\n",
        "not P(positive)",
    ),
    "save_checkpoint": (  # straight to the path: a failed save destroys the previous file
        "def save_checkpoint(path, model, vocab, model_config, max_len):\n"
        "    torch.save({'state_dict': model.state_dict(), 'vocab': sorted(vocab, key=vocab.get),\n"
        "                'model_config': dict(model_config), 'max_len': max_len}, path)\n",
        "the previous checkpoint was damaged",
    ),
    "SentimentRNN": (  # the last state instead of the pooled ones
        "class SentimentRNN(nn.Module):\n"
        "    def __init__(self, vocab_size, embed_size, num_hiddens, num_layers=1, cell='lstm',\n"
        "                 dropout=0.5, packed=False):\n"
        "        super().__init__()\n"
        "        self.embedding = nn.Embedding(vocab_size, embed_size, padding_idx=0)\n"
        "        kind = nn.LSTM if cell == 'lstm' else nn.GRU\n"
        "        self.rnn = kind(embed_size, num_hiddens, num_layers, batch_first=True,\n"
        "                        bidirectional=True)\n"
        "        self.dropout = nn.Dropout(dropout)\n"
        "        self.fc = nn.Linear(4 * num_hiddens, 2)\n"
        "    def forward(self, X, lengths):\n"
        "        H, _ = self.rnn(self.embedding(X))\n"
        "        return self.fc(torch.cat([H[:, -1], H[:, -1]], -1))\n",
        "the logits: largest difference",
    ),
}

(
    test_the_reference_passes_every_probe,
    test_alternatives_of_the_corpus_pass,
    test_a_wrong_answer_behind_no_op_checks_fails_here_with_why,
) = integrity_tests("05_imdb_sentiment", CORPUS, HELPERS, CHEATS, None)
