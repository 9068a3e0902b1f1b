from graphdex.common.resolution import clean_surface, find_acronyms, name_core, normalize_key, resolve_key


def test_obvious_variants_share_a_key():
    variants = ["the Eiffel Tower", "Eiffel  Tower", "EIFFEL TOWER", "Eiffel Tower's", "“Eiffel Tower”", "The Eiffel Tower,"]
    assert {normalize_key(v) for v in variants} == {"eiffel tower"}


def test_different_names_stay_apart():
    assert normalize_key("Paris") != normalize_key("Paris Hilton")
    assert normalize_key("Thebes") != normalize_key("The Bes")


def test_display_surface_keeps_case():
    assert clean_surface("the  Rolling Stones'") == "Rolling Stones"
    assert clean_surface("World Health Organization (WHO") == "World Health Organization"


def test_acronyms_defined_in_text():
    text = "The National Aeronautics and Space Administration (NASA) launched it. Later the European Space Agency (ESA) joined."
    acronyms = find_acronyms(text)
    assert acronyms == {"nasa": "national aeronautics and space administration", "esa": "european space agency"}
    assert resolve_key("NASA", acronyms) == resolve_key("the National Aeronautics and Space Administration", acronyms)


def test_parenthesis_that_is_not_an_acronym_is_ignored():
    assert find_acronyms("He met Big John (Smith) there.") == {}


def test_surname_aliases_only_when_one_full_name_fits():
    from graphdex.common.resolution import surname_aliases

    mentions = [("john farrow", "PERSON"), ("farrow", "PERSON"), ("mia farrow", "PERSON"), ("maria kessler", "PERSON"),
                ("kessler", "CONCEPT"), ("leipzig", "GPE"), ("new york", "GPE")]
    aliases = surname_aliases(mentions)
    assert aliases == {"kessler": "maria kessler"}, "two Farrows are ambiguous; places are not people"


def test_a_place_that_ends_a_name_is_no_surname():
    from graphdex.common.resolution import surname_aliases

    mentions = [("marie zéphyrine of france", "PERSON"), ("france", "GPE"), ("maria josepha of saxony", "PERSON"),
                ("saxony", "CONCEPT"), ("otto von habsburg", "PERSON"), ("habsburg", "PERSON")]
    assert surname_aliases(mentions) == {"habsburg": "otto von habsburg"}


def test_the_core_of_a_qualified_name():
    assert name_core("Maharashtra state") == "Maharashtra"
    assert name_core("north-west Iowa") == "Iowa"
    assert name_core("the upper Rhine valley") == "Rhine"
    assert name_core("1920 Summer Olympics") == ""  # numbers belong to the name
    assert name_core("Ohio River") == ""  # a capitalised word is part of the name
    assert name_core("small village") == ""  # nothing name-like is left
    assert name_core("Iowa") == ""
