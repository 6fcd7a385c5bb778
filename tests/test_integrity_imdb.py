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
}
HELPERS = (
    "import re\nfrom collections import Counter, defaultdict\n"
    "from torch.nn.utils.rnn import pad_sequence\n"
    + sources(alt._mask)
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
}

(
    test_the_reference_passes_every_probe,
    test_alternatives_of_the_corpus_pass,
    test_a_wrong_answer_behind_no_op_checks_fails_here_with_why,
) = integrity_tests("05_imdb_sentiment", CORPUS, HELPERS, CHEATS, None)
