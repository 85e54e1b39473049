import pytest

from assistant.embeddings import HashEmbeddings
from assistant.verify import ClaimChecker

LASER = (
    "Laser therapy uses high-intensity beams of light to vaporize damaged skin cells and "
    "stimulate your body’s natural production of new ones, smoothing out acne scars and "
    "reducing rough texture."
)
STRENGTHENING = (
    "3. Strengthening. Your skin goes through a delicate balance between collagen "
    "production and destruction—and the type of acne scar that forms depends on this "
    "phase. Atrophic scars form when your body destroys the collagen during the "
    "strengthening phase, while hypertrophic and keloid scars occur when your body "
    "overproduces collagen (though rare)."
)
KELOIDS = (
    "Keloids extend beyond the borders of the original wound; they’re firm, red, raised, "
    "and can grow over time. These are due to excess collagen and fibrous tissue growth."
)


@pytest.fixture
def checker():
    return ClaimChecker(HashEmbeddings(), min_similarity=0.3)


def test_verbatim_is_supported_with_an_exact_quote(checker):
    verdict = checker.check("Laser therapy uses high-intensity beams of light. [2]", LASER)
    assert verdict.supported and verdict.quote == LASER


@pytest.mark.parametrize(
    ("claim", "passage", "reason"),
    [
        ("Laser sessions range from $100 to $500.", LASER, "number"),
        ("Laser therapy is painless.", LASER, "painless"),
        ("A keloid is a type of hypertrophic scar.", KELOIDS, "category"),
        ("Keloids are a type of hypertrophic scar.", STRENGTHENING, "category"),
        ("Keloids do not extend beyond the borders of the original wound.", KELOIDS, "negation"),
        ("Keloids always grow over time.", KELOIDS, "always"),
    ],
)
def test_known_inventions_are_rejected(checker, claim, passage, reason):
    verdict = checker.check(claim, passage)
    assert not verdict.supported
    assert any(reason in r for r in verdict.reasons)


def test_the_labelled_set_is_well_formed():
    from assistant.evals.verifier import DEFAULT_CASES, load_cases

    cases = load_cases(DEFAULT_CASES)
    assert len(cases) >= 60
    assert sum(c.supported for c in cases) >= 25 and sum(not c.supported for c in cases) >= 25
    sentences = {c.sentence for c in cases}
    assert "Laser sessions range from $100 to $500." in sentences
    assert "A keloid is a type of hypertrophic scar." in sentences


def test_the_patients_own_words_do_not_count_as_new_content(checker):
    claim = (
        "Some scars sink in because collagen is lost, while others stick up from excess collagen."
    )
    passage = (
        "Atrophic scars form when your body destroys the collagen, while hypertrophic and "
        "keloid scars occur when your body overproduces collagen (though rare)."
    )
    question = "why do some scars sink in and others stick up"
    assert "sink" in " ".join(checker.check(claim, passage).reasons)
    assert "sink" not in " ".join(checker.check(claim, passage, question=question).reasons)
