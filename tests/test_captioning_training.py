"""Caption batches, the captioning training loop, greedy captions and their scores."""

from __future__ import annotations

import math
import random

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.captioning_training import (
    _epoch_examples,
    caption_all,
    caption_nll,
    caption_vocabulary,
    collate_captions,
    dataset_vocabulary,
    decode_caption,
    encode_caption,
    image_statistics,
    normalise_images,
    score_captioner,
    train_captioner,
)
from course_lib.data.scenes import COLOURS, CaptionedImage, scene_dataset
from course_lib.models.captioning import CNNEncoder, ShowAndTell, ShowAttendTell, caption_loss
from course_lib.models.tagger import SequenceTrainConfig
from course_lib.vocab import BOS, EOS, PAD

pytestmark = pytest.mark.usefixtures("one_thread")


class FixedCaptioner(nn.Module):
    """A stand-in captioner that writes the same words for every image (a step function that
    puts all probability on the next word of ``ids``)."""

    def __init__(self, ids: list[int], vocab_size: int):
        super().__init__()
        self.sequence = torch.tensor(ids)
        self.vocab_size = vocab_size
        self.unused = nn.Parameter(torch.zeros(1))

    def step_function(self, images):
        def step(y_prev, position):
            logits = torch.full((len(position), self.vocab_size), -1e4)
            logits[torch.arange(len(position)), self.sequence[position.clamp(max=len(self.sequence) - 1)]] = 0
            return F.log_softmax(logits, dim=-1), position + 1

        return step, torch.zeros(images.shape[0], dtype=torch.long)



@pytest.fixture(scope="module")
def one_object_scenes() -> list[CaptionedImage]:
    return scene_dataset(400, seed=0, two_objects=0.0, noise=0.0)


def small_encoder() -> CNNEncoder:
    return CNNEncoder(3, channels=(8, 16, 16))


def test_vocabulary_has_no_unknown_token_and_round_trips(one_object_scenes):
    vocab = dataset_vocabulary(one_object_scenes)
    assert vocab.specials == (PAD, BOS, EOS) and vocab.unk_id is None
    caption = one_object_scenes[0].references[1]
    assert decode_caption(encode_caption(caption, vocab), vocab) == caption
    with pytest.raises(KeyError):
        encode_caption("a purple circle", vocab)


def test_collate_shifts_the_captions_and_pads_them():
    vocab = caption_vocabulary(["red circle", "blue"])
    bos, eos, pad = (vocab.lookup(t) for t in (BOS, EOS, PAD))
    red, circle, blue = (vocab.lookup(w) for w in ("red", "circle", "blue"))
    images = torch.zeros(2, 3, 8, 8)
    batch = collate_captions(images, [[red, circle], [blue]], vocab)
    assert batch.captions_in.tolist() == [[bos, bos], [red, blue], [circle, pad]]
    assert batch.targets.tolist() == [[red, blue], [circle, eos], [eos, pad]]
    assert batch.lengths.tolist() == [3, 2]
    assert batch.images is images


def test_each_epoch_uses_one_reference_per_image_or_all_of_them():
    encoded = [[[1], [2]], [[3]], [[4], [5], [6]]]
    rng = random.Random(0)
    images, captions = _epoch_examples(encoded, "random", rng)
    assert images == [0, 1, 2] and all(c in encoded[i] for i, c in zip(images, captions, strict=True))
    images, captions = _epoch_examples(encoded, "all", rng)
    assert images == [0, 0, 1, 2, 2, 2] and captions == [[1], [2], [3], [4], [5], [6]]


def test_the_training_loss_is_the_masked_loss_over_all_references(one_object_scenes):
    """With one batch holding every (image, reference) pair and a learning rate of 0, the epoch's
    loss is the mean loss per word that ``caption_nll`` computes on its own."""
    data = one_object_scenes[:20]
    vocab = dataset_vocabulary(data)
    torch.manual_seed(0)
    model = ShowAndTell(len(vocab), 8, 16, encoder=small_encoder())
    expected = caption_nll(model, data, vocab)
    config = SequenceTrainConfig(epochs=1, batch_size=1000, lr=0.0, bucketing=False)
    history = train_captioner(model, data, config, vocab, device="cpu", references="all")
    assert history.train_loss[0] == pytest.approx(expected, rel=1e-5)
    # and caption_nll is the masked cross-entropy of the shifted captions
    refs = [(i, ref) for i, item in enumerate(data) for ref in item.references]
    batch = collate_captions(torch.stack([data[i].image for i, _ in refs]),
                             [encode_caption(ref, vocab) for _, ref in refs], vocab)
    with torch.no_grad():
        direct = caption_loss(model(batch.images, batch.captions_in), batch.targets, batch.lengths)
    assert expected == pytest.approx(direct.item(), rel=1e-5)


def test_training_is_deterministic(one_object_scenes):
    data = one_object_scenes[:64]
    vocab = dataset_vocabulary(data)
    losses = []
    for _ in range(2):
        torch.manual_seed(1)
        model = ShowAndTell(len(vocab), 8, 16, encoder=small_encoder())
        config = SequenceTrainConfig(epochs=2, batch_size=16, lr=3e-3, seed=3)
        losses.append(train_captioner(model, data, config, vocab, device="cpu").train_loss)
    assert losses[0] == losses[1]


def test_a_tiny_captioner_learns_colours_above_chance(one_object_scenes):
    """After a few seconds of training on 400 single objects, the greedy caption names the right
    colour far more often than the 1 in 5 of guessing."""
    train, test = one_object_scenes[:320], one_object_scenes[320:]
    vocab = dataset_vocabulary(one_object_scenes)
    torch.manual_seed(0)
    model = ShowAndTell(len(vocab), 16, 32, encoder=small_encoder())
    config = SequenceTrainConfig(epochs=8, batch_size=16, lr=1e-2)
    history = train_captioner(model, train, config, vocab, device="cpu")
    assert history.train_loss[-1] < 0.75 * history.train_loss[0]
    captions, _ = caption_all(model, torch.stack([item.image for item in test]), vocab)
    named = [next((w for w in c.split() if w in COLOURS), None) for c in captions]
    accuracy = sum(word == item.objects[0].colour for word, item in zip(named, test, strict=True)) / len(test)
    assert accuracy > 0.5
    assert model.training


def test_caption_all_returns_attention_maps_over_the_feature_positions(one_object_scenes):
    vocab = dataset_vocabulary(one_object_scenes)
    torch.manual_seed(0)
    model = ShowAttendTell(len(vocab), 8, 16, encoder=small_encoder())
    images = torch.stack([item.image for item in one_object_scenes[:5]])
    captions, maps = caption_all(model, images, vocab, max_len=6)
    for caption, alpha in zip(captions, maps, strict=True):
        assert set(caption.split()) <= set(vocab.id_to_token)
        assert alpha.shape == (len(caption.split()), 16)  # a 32×32 image gives a 4×4 map
        assert torch.allclose(alpha.sum(-1), torch.ones(len(alpha)))


def test_scores_of_a_captioner_that_writes_a_reference(one_object_scenes):
    data = [item for item in one_object_scenes if item.references[0] == one_object_scenes[0].references[0]]
    vocab = dataset_vocabulary(one_object_scenes)
    ids = [*encode_caption(data[0].references[1], vocab), vocab.lookup(EOS)]
    scores = score_captioner(FixedCaptioner(ids, len(vocab)), data, vocab)
    assert scores.hypotheses == [data[0].references[1]] * len(data)
    assert scores.exact_match == 1.0 and scores.bleu == pytest.approx(100.0)
    other = [item for item in one_object_scenes if item.objects[0].colour != data[0].objects[0].colour]
    wrong = score_captioner(FixedCaptioner(ids, len(vocab)), other, vocab)
    assert wrong.exact_match == 0.0 and 0 < wrong.bleu < 100


def test_unknown_reference_choice_is_refused(one_object_scenes):
    vocab = dataset_vocabulary(one_object_scenes)
    model = ShowAndTell(len(vocab), 8, 16, encoder=small_encoder())
    with pytest.raises(ValueError):
        train_captioner(model, one_object_scenes[:4], None, vocab, device="cpu", references="first")


def test_normalised_images_have_zero_mean_and_unit_spread_per_channel(one_object_scenes):
    mean, std = image_statistics(one_object_scenes)
    images = torch.stack([item.image for item in one_object_scenes])
    assert torch.allclose(mean, images.transpose(0, 1).reshape(3, -1).mean(1))
    normalised = normalise_images(one_object_scenes, mean, std)
    new_mean, new_std = image_statistics(normalised)
    assert torch.allclose(new_mean, torch.zeros(3), atol=1e-5)
    assert torch.allclose(new_std, torch.ones(3), atol=1e-5)
    assert normalised[0].references == one_object_scenes[0].references
    assert normalised[0].objects == one_object_scenes[0].objects
    assert torch.equal(one_object_scenes[0].image, images[0])  # the originals are unchanged


def test_he_initialisation_keeps_the_scale_of_the_features():
    torch.manual_seed(0)
    encoder = CNNEncoder(3, channels=(32, 64, 64))
    images = torch.randn(64, 3, 32, 32)
    conv = encoder.blocks[3]
    assert isinstance(conv, nn.Conv2d) and not conv.bias.any()
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / (32 * 9)), rel=0.05)
    features = encoder(images)
    assert 0.3 < features.pow(2).mean().sqrt() < 5  # the scale of the input, give or take the max-pooling
    he_spread = features.mean(dim=(2, 3)).std(dim=0).mean()
    for layer in encoder.modules():
        if isinstance(layer, nn.Conv2d):
            layer.reset_parameters()  # PyTorch's default initialisation
    assert he_spread > 10 * encoder(images).mean(dim=(2, 3)).std(dim=0).mean()
