import pytest

from assistant.embeddings import HashEmbeddings, cosine
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
    # echoing the patient is allowed on the passage retrieval ranked first for their words
    echo = checker.check(claim, passage, question=question, first_hit=True)
    assert "sink" not in " ".join(echo.reasons)
    # elsewhere the echo is the model's own mapping of their words to the guide: not backed
    assert "sink" in " ".join(checker.check(claim, passage, question=question).reasons)


TOPICS = {
    "How to treat acne scars › Chemical peels": frozenset({"chemical", "peel"}),
    "How to treat acne scars › TCA CROSS": frozenset({"tca", "cross"}),
    "What are the different types of acne scars? › Atrophic scars": frozenset({"atrophic"}),
    "What are the different types of acne scars? › Atrophic scars › Ice pick scars": frozenset(
        {"ice", "pick"}
    ),
}
TCA = (
    "The chemical reconstruction of skin scars (CROSS) technique uses high concentrations of "
    "trichloroacetic acid (TCA)—which breaks down connective tissue fibers—to treat and "
    "rebuild atrophic acne scars."
)
ATROPHIC = (
    "Atrophic scars are the most common type of acne scarring. They look like depressions, "
    "craters, or indentations in the skin and are caused by the loss of collagen."
)


@pytest.fixture
def topical():
    return ClaimChecker(HashEmbeddings(), min_similarity=0.3, topics=TOPICS)


@pytest.mark.parametrize(
    ("claim", "passage", "section", "reason"),
    [
        # another topic's name on this passage's facts
        ("Chemical peels use high concentrations of trichloroacetic acid (TCA).", TCA,
         "How to treat acne scars › TCA CROSS", "names 'Chemical peels'"),
        ("TCA CROSS treats ice pick scars and rebuilds atrophic acne scars.", TCA,
         "How to treat acne scars › TCA CROSS", "names 'Ice pick scars'"),
        # one type's description given to all scars
        ("Acne scars look like depressions, craters, or indentations in the skin.", ATROPHIC,
         "What are the different types of acne scars? › Atrophic scars", "says of something"),
        # a judgement between options the passage never makes
        ("TCA CROSS is better for atrophic acne scars than other treatments.",
         TCA + " The process diminishes the appearance of acne scars and improves skin texture.",
         "How to treat acne scars › TCA CROSS", "judges better"),
    ],
)
def test_a_claim_about_another_subject_is_rejected(topical, claim, passage, section, reason):
    verdict = topical.check(claim, passage, section)
    assert not verdict.supported
    assert any(reason in r for r in verdict.reasons), verdict.reasons


@pytest.mark.parametrize(
    ("claim", "passage", "section"),
    [
        ("TCA CROSS uses trichloroacetic acid to rebuild atrophic acne scars.", TCA,
         "How to treat acne scars › TCA CROSS"),
        ("Atrophic scars look like depressions, craters, or indentations in the skin.", ATROPHIC,
         "What are the different types of acne scars? › Atrophic scars"),
        ("They look like depressions, craters, or indentations in the skin.", ATROPHIC,
         "What are the different types of acne scars? › Atrophic scars"),
    ],
)
def test_a_claim_about_the_passages_own_subject_stands(topical, claim, passage, section):
    verdict = topical.check(claim, passage, section)
    assert verdict.supported, verdict.reasons


def test_topics_are_the_headings_that_open_their_passage():
    from assistant.verify import topic_words

    topics = topic_words({
        "How to treat acne scars › Chemical peels": "Chemical peels can improve the appearance",
        "How to treat acne scars › TCA CROSS": TCA,
        "Bottom line": "It’s important to remember that there’s no one-size-fits-all approach",
    })
    assert topics == {
        "How to treat acne scars › Chemical peels": {"chemical", "peel"},
        "How to treat acne scars › TCA CROSS": {"tca", "cross"},
    }


def test_cosine_is_the_angle_between_two_embeddings():
    assert cosine([1.0, 0.0], [2.0, 0.0]) == pytest.approx(1.0)
    assert cosine([1.0, 0.0], [0.0, 3.0]) == pytest.approx(0.0)
    assert cosine([1.0, 1.0], [-1.0, -1.0]) == pytest.approx(-1.0)
    assert cosine([3.0, 4.0], [4.0, 3.0]) == pytest.approx(24 / 25)
    assert cosine([0.0, 0.0], [1.0, 2.0]) == 0.0  # no direction: nothing alike
    with pytest.raises(ValueError, match="different sizes"):
        cosine([1.0], [1.0, 2.0])
