"""Sentence templates and value pools for the synthetic encyclopedia.

``{N}`` is the subject's mention ("the Lobran", "Mount Taivard", "Verolul"), ``{P}`` its pronoun;
other fields are the entity's facts (see ``wikiworld.make_facts``) or per-sentence random values
(``{year}``, ``{num}``, ``{adj}``, ``{org}``, ``{person}``, ``{month}``). In link templates ``{S}``
is the source's mention and ``{T}`` the rendered wikilink to the target.
"""

from __future__ import annotations

KINDS = ("city", "river", "mountain", "person", "company", "band", "species")
KIND_WEIGHTS = (0.22, 0.14, 0.10, 0.22, 0.12, 0.10, 0.10)
CATEGORY = {
    "city": "place", "river": "place", "mountain": "place",
    "person": "agent", "company": "agent", "band": "agent",
    "species": "organism",
}

COLOURS = ("red", "blue", "green", "ochre", "violet", "amber", "grey", "crimson", "teal", "white", "black", "golden")
INDUSTRIES = ("textiles", "shipbuilding", "glassmaking", "printing", "brewing", "tanning", "clockmaking",
              "salt mining", "papermaking", "ceramics", "tea trading", "silk weaving")
CLIMATES = ("temperate", "continental", "mild oceanic", "dry", "humid subtropical", "cold semi-arid")
FESTIVALS = ("lantern", "harvest", "river", "music", "kite", "bread", "chess", "puppet")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")
FISH = ("trout", "grayling", "pike", "perch", "sturgeon", "eels", "carp", "salmon")
ROCKS = ("granite", "basalt", "limestone", "gneiss", "sandstone", "slate", "marble")
FORESTS = ("pine", "beech", "birch", "oak", "fir", "larch")
OCCUPATIONS = ("painter", "engineer", "poet", "botanist", "composer", "physician", "cartographer",
               "astronomer", "architect", "novelist", "chemist", "sculptor")
SUBJECTS = ("mathematics", "law", "medicine", "music", "drawing", "natural history", "languages", "philosophy")
WORK_NOUNS = ("Atlas", "Garden", "Letters", "Symphony", "Bridge", "Survey", "Lantern", "Harbour", "Almanac", "Orchard")
WORK_ADJECTIVES = ("Silent", "Northern", "Long", "Hidden", "Golden", "Last", "Quiet", "Broken", "Seventh")
PRODUCTS = ("bicycles", "pianos", "lamps", "telescopes", "stoves", "typewriters", "sewing machines",
            "radios", "locks", "compasses")
GENRES = ("folk rock", "jazz", "post-punk", "electronic", "bluegrass", "shoegaze", "progressive rock", "synth-pop")
TAXA = ("moth", "finch", "orchid", "beetle", "trout")
DIETS = ("seeds", "nectar", "small insects", "leaf litter", "algae", "fallen fruit")
STATUSES = ("least concern", "near threatened", "vulnerable", "endangered")
ADJECTIVES = ("remarkable", "quiet", "prosperous", "unusual", "celebrated", "neglected", "picturesque",
              "influential", "controversial", "well preserved")
ORG_NOUNS = ("Society", "Institute", "Academy", "Museum", "Trust", "Survey", "Foundation")
LANGUAGES = (("fr", "é"), ("de", "e"), ("es", "o"), ("it", "o"), ("nl", "e"), ("pl", "y"))
COMPANY_SUFFIXES = ("Holdings", "Works", "Group", "Foundry")
SECTION_FRAGMENTS = ("History", "Geography", "Etymology", "Career", "Description")

SECTIONS = {
    "city": ("History", "Geography", "Economy", "Culture", "Transport"),
    "river": ("Course", "History", "Ecology", "Economy"),
    "mountain": ("Geology", "Climbing history", "Ecology", "Access"),
    "person": ("Early life", "Career", "Later life", "Legacy"),
    "company": ("History", "Operations", "Products", "Corporate affairs"),
    "band": ("History", "Musical style", "Members", "Legacy"),
    "species": ("Taxonomy", "Description", "Distribution and habitat", "Behaviour", "Conservation"),
}

# Lead sentences state the defining facts; "{lead}" is the bold title with its opening words.
LEAD = {
    "city": ("{lead} is a city in {region}.",
             "{N} has a population of about {population:,} and lies at an elevation of {elevation_m}&nbsp;metres.",
             "{N} was founded in {founded} and is known for its {industry}."),
    "river": ("{lead} is a river in {region}, {length_km}&nbsp;kilometres long.",
              "{N} has a {colour} tint and is known for its {fish}."),
    "mountain": ("{lead} is a mountain in {region} that rises to {elevation_m}&nbsp;metres.",
                 "{N} is made mostly of {rock} and was first climbed in {first_ascent}."),
    "person": ("{lead} ({born_text}) {was_is} a {occupation} from {region}.",
               "{N} is best known for ''{known_for}''."),
    "company": ("{lead} is a {industry} company headquartered in {region}.",
                "{N} was founded in {founded} by {founder} and is best known for its {product}."),
    "band": ("{lead} are a {genre} band from {region}, formed in {formed}.",
             "{N} released their debut album, ''{debut_album}'', in {debut_year}."),
    "species": ("{lead} is a species of {taxon} in the family {family}.",
                "{N} is native to {region} and was first described in {discovered}."),
}

FACTS = {
    "city": {
        "History": ("{N} was founded in {founded}.",
                    "According to local records, {N} received its charter in {founded}.",
                    "The old town of {N} grew around a market square in the decades after {founded}.",
                    "{N} was rebuilt after a great fire in {year}.",
                    "During the {century} century {N} became a regional centre of {industry}."),
        "Geography": ("{N} lies at an elevation of {elevation_m} metres above sea level.",
                      "The climate of {N} is {climate}, with about {rain} millimetres of rain a year.",
                      "{N} is the {rank} largest city in {region}.",
                      "The surroundings of {N} are dotted with small farms and orchards."),
        "Economy": ("The economy of {N} is based on {industry}.",
                    "{N} is known throughout {region} for its {industry}.",
                    "In {year}, {num} new workshops for {industry} opened in {N}.",
                    "About a third of the workers in {N} are employed in {industry}."),
        "Culture": ("The flag of {N} is {colour}.",
                    "{N} holds an annual {festival} festival every {festival_month}.",
                    "During the {festival} festival the streets of {N} are hung with {colour} banners.",
                    "The current mayor of {N} is {mayor}."),
        "Transport": ("{N} is served by a railway station opened in {year}.",
                      "A ring road around {N} was completed in {year}.",
                      "Buses connect {N} with the other towns of {region}."),
    },
    "river": {
        "Course": ("{N} rises at an elevation of {source_elevation_m} metres in the hills of {region}.",
                   "Over its {length_km} kilometres, {N} passes through {gorges} gorges.",
                   "The water of {N} has a {colour} tint caused by the minerals it carries.",
                   "{N} has an average discharge of {discharge} cubic metres per second."),
        "History": ("The first bridge over {N} was built in {year}.",
                    "{N} flooded severely in {year}.",
                    "Early maps of {region} show {N} under an older name.",
                    "Boatmen carried timber down {N} until {year}."),
        "Ecology": ("{N} is known for its {fish}.",
                    "Anglers on {N} catch {fish} throughout the summer.",
                    "The banks of {N} are lined with willows and reed beds."),
        "Economy": ("Mills along {N} were powered by its current from {year}.",
                    "A hydroelectric dam was built on {N} in {year}.",
                    "Gravel is still dredged from {N} near its mouth."),
    },
    "mountain": {
        "Geology": ("{N} is made mostly of {rock}.",
                    "The {rock} of {N} gives its cliffs a {colour} colour.",
                    "{N} rises to {elevation_m} metres above sea level."),
        "Climbing history": ("{N} was first climbed in {first_ascent} by {first_climber}.",
                             "The first ascent of {N} in {first_ascent} took {num} days.",
                             "A harder route up the north face of {N} was opened in {year}."),
        "Ecology": ("The lower slopes of {N} are covered with {forest} forest.",
                    "Above the tree line, {N} is bare {rock} and scree.",
                    "Ibex and marmots live on the upper slopes of {N}."),
        "Access": ("A trail to the summit of {N} was opened in {year}.",
                   "A mountain hut below the summit of {N} sleeps {num} climbers.",
                   "The usual ascent of {N} starts from a village in {region}."),
    },
    "person": {
        "Early life": ("{N} was born in {born} in {region}.",
                       "{N} grew up in {region} and studied {subject}.",
                       "As a young {occupation}, {N} travelled widely across {region}."),
        "Career": ("{N} worked as a {occupation} for most of {poss} life.",
                   "{N} completed ''{known_for}'' in {known_for_year}.",
                   "In {year}, {N} was elected to the {org}.",
                   "Critics praised the {adj} style of {N}."),
        "Later life": ("{late_life}",
                       "In later years {N} returned to {region}.",
                       "{N} gave {poss} papers to the {org} in {year}."),
        "Legacy": ("''{known_for}'' by {N} is still studied today.",
                   "A street in {region} was named after {N} in {year}.",
                   "The {org} holds the largest collection of works by {N}."),
    },
    "company": {
        "History": ("{N} was founded in {founded} by {founder}.",
                    "{founder} started {N} in a small workshop in {region} in {founded}.",
                    "{N} survived a financial crisis in {year}."),
        "Operations": ("{N} employs about {employees:,} people.",
                       "The headquarters of {N} are in {region}.",
                       "In {year}, {N} opened a second factory."),
        "Products": ("{N} is best known for its {product}.",
                     "The {product} made by {N} are exported to {num} countries.",
                     "{N} introduced a new line of {product} in {year}."),
        "Corporate affairs": ("The logo of {N} is {colour}.",
                              "{N} has been owned by the {founder_surname} family since {founded}.",
                              "Shares of {N} were first traded in {year}."),
    },
    "band": {
        "History": ("{N} formed in {region} in {formed}.",
                    "{N} released their debut album, ''{debut_album}'', in {debut_year}.",
                    "{N} toured abroad for the first time in {year}."),
        "Musical style": ("{N} play {genre}.",
                          "Reviewers describe the sound of {N} as {adj} {genre}.",
                          "The stage colours of {N} are {colour} and black."),
        "Members": ("{N} have {members} members.",
                    "The line-up of {N} has changed {num} times since {formed}."),
        "Legacy": ("''{debut_album}'' by {N} is regarded as a classic of {genre}.",
                   "{N} were inducted into the {org} in {year}."),
    },
    "species": {
        "Taxonomy": ("{N} belongs to the family {family}.",
                     "{N} was first described in {discovered} by {describer}."),
        "Description": ("Adults of {N} are about {length_cm} centimetres long and mostly {colour}.",
                        "{N} can be recognised by its {colour} markings."),
        "Distribution and habitat": ("{N} is native to {region}.",
                                     "{N} lives in the lowlands and river valleys of {region}."),
        "Behaviour": ("{N} feeds mainly on {diet}.",
                      "{N} is most active at dawn."),
        "Conservation": ("{N} is listed as {status}.",
                         "Surveys in {year} counted {num} colonies of {N}."),
    },
}

# Events with a random year: EVENTS["any"] suit every subject, the others one category.
EVENTS = {
    "any": (
        "In {year}, {N} was the subject of a study by the {org}.",
        "{N} featured in a documentary broadcast in {year}.",
        "A report published in {year} described {N} as {adj}.",
        "In {year}, {person} wrote a short history of {N}.",
        "The archives of the {org} hold {num} documents about {N}.",
        "An exhibition about {N} opened in {year} and drew {num} thousand visitors.",
        "{N} appears in a novel by {person} published in {year}.",
        "A lecture about {N} was given to the {org} in {year}.",
        "The name of {N} was spelled differently in documents from {year}.",
        "{person} described {N} as {adj} in a letter written in {year}.",
        "A survey in {year} found that {num} percent of people in {region} had heard of {N}.",
        "In {year}, a radio programme about {N} was broadcast across {region}.",
        "A bibliography compiled in {year} lists {num} works about {N}.",
    ),
    "place": (
        "{N} was mentioned in the census of {region} taken in {year}.",
        "Local historians still debate what happened at {N} in {year}.",
        "In {year}, a commemorative stamp showing {N} was issued in {region}.",
        "{person} painted {N} several times in {year}.",
        "A guidebook from {year} calls {N} one of the most {adj} sights of {region}.",
        "Photographs of {N} taken in {year} are kept by the {org}.",
        "In {year}, {N} was placed on a list of heritage sites of {region}.",
        "Restoration work at {N} began in {year}.",
        "A storm in {year} caused heavy damage around {N}.",
        "Surveyors from the {org} mapped {N} in {year}.",
    ),
    "agent": (
        "In {year}, {N} received an award from the {org}.",
        "{N} was interviewed by {person} in {year}.",
        "The {org} honoured {N} with a medal in {year}.",
        "A portrait of {N} by {person} dates from {year}.",
        "In {year}, {N} gave a series of lectures in {region}.",
        "Letters from {N} written in {year} survive in the {org}.",
        "{N} travelled through {region} in {year}.",
        "A biography of {N} by {person} appeared in {year}.",
    ),
    "organism": (
        "Specimens of {N} collected in {year} are kept by the {org}.",
        "In {year}, {person} photographed {N} in the wild for the first time.",
        "A field guide from {year} gives a detailed description of {N}.",
        "Numbers of {N} in {region} fell sharply after {year}.",
        "{N} was chosen as the emblem of a nature reserve in {region} in {year}.",
        "Researchers from the {org} tracked {N} in {year}.",
    ),
}

FILLERS = (
    "{N} remains {adj} to this day.",
    "Many writers consider {N} {adj}.",
    "{P} is often mentioned in books about {region}.",
    "The story of {N} is told in several local museums.",
)

# Link sentences by target kind and source category: (relation, template). The appositive that
# states one of the target's own facts is appended by the renderer.
LINKS = {
    "city": {
        "place": (("near", "{S} lies about {dist} kilometres from {T}"),
                  ("road_to", "A road built in {year} connects {S} with {T}")),
        "agent": (("based_in", "{S} spent several years in {T}"),
                  ("worked_in", "In {year}, {S} opened a workshop in {T}")),
        "organism": (("found_near", "{S} is common in the countryside around {T}"),),
    },
    "river": {
        "place": (("drained_by", "{S} is drained by {T}"),
                  ("near", "{S} lies close to {T}")),
        "agent": (("visited", "{S} often visited the banks of {T}"),
                  ("worked_on", "In {year}, {S} worked on a project along {T}")),
        "organism": (("lives_in", "{S} breeds along {T}"),),
    },
    "mountain": {
        "place": (("overlooked_by", "{S} lies in the shadow of {T}"),
                  ("view_of", "On clear days {S} has a view of {T}")),
        "agent": (("climbed", "In {year}, {S} climbed {T}"),
                  ("inspired_by", "{S} drew inspiration from {T}")),
        "organism": (("lives_on", "{S} is found on the slopes of {T}"),),
    },
    "person": {
        "place": (("visited_by", "{S} was visited by {T}"),
                  ("described_by", "An early description of {S} was written by {T}")),
        "agent": (("worked_with", "{S} worked with {T}"),
                  ("influenced_by", "{S} was strongly influenced by {T}")),
        "organism": (("described_by", "{S} was studied in detail by {T}"),),
    },
    "company": {
        "place": (("has_site", "A large site of {T} operates in {S}"),
                  ("supplied_by", "Much of the equipment used in {S} was supplied by {T}")),
        "agent": (("partner_of", "{S} signed a contract with {T}"),
                  ("sponsored_by", "In {year}, {S} was sponsored by {T}")),
        "organism": (("monitored_by", "{S} is monitored by {T}"),),
    },
    "band": {
        "place": (("concert_in", "A celebrated concert by {T} took place in {S}"),
                  ("song_about", "A song about {S} was recorded by {T}")),
        "agent": (("toured_with", "In {year}, {S} toured with {T}"),
                  ("admired", "{S} admired the music of {T}")),
        "organism": (("song_about", "A song about {S} was recorded by {T}"),),
    },
    "species": {
        "place": (("home_to", "{S} is home to {T}"),
                  ("emblem", "The emblem of {S} shows {T}")),
        "agent": (("studied", "{S} studied {T}"),
                  ("protected", "In {year}, {S} helped to protect {T}")),
        "organism": (("competes_with", "{S} competes for food with {T}"),
                     ("shares_habitat", "{S} often shares its habitat with {T}")),
    },
}

# Unlinked second mentions of a link target ({Tm}), placed in another section than the link, so
# more of the source's segments name the entities it links to.
ECHOES = (
    "{S} is often discussed together with {Tm}.",
    "Several accounts of {S} also mention {Tm}.",
    "The connection between {S} and {Tm} is described in histories of {region}.",
    "Writers comparing {S} with {Tm} point to a shared past in {region}.",
    "{S} and {Tm} were both named in a survey of {region} in {year}.",
)

# One-fact appositives about a link target, consistent with the target's own article.
APPOSITIVES = {
    "city": ("a city in {region}", "which was founded in {founded}", "a centre of {industry}"),
    "river": ("a river in {region}", "which is {length_km} kilometres long", "a river known for its {fish}"),
    "mountain": ("a mountain in {region}", "which rises to {elevation_m} metres",
                 "which was first climbed in {first_ascent}"),
    "person": ("the {occupation} from {region}", "who was born in {born}", "the author of ''{known_for}''"),
    "company": ("a {industry} company", "which was founded in {founded}", "the maker of {product}"),
    "band": ("the {genre} band", "who formed in {formed}", "the band from {region}"),
    "species": ("a {taxon} native to {region}", "a {colour} {taxon}", "which was first described in {discovered}"),
}

INFOBOX_FIELDS = {
    "city": (("name", "{title}"), ("country", "{region}"), ("established_date", "{founded}"),
             ("population_total", "{population}"), ("elevation_m", "{elevation_m}"), ("leader_name", "{mayor}")),
    "river": (("name", "{title}"), ("country", "{region}"), ("length", "{length_km}&nbsp;km"),
              ("discharge", "{discharge}&nbsp;m³/s"), ("source_elevation", "{source_elevation_m}&nbsp;m")),
    "mountain": (("name", "{title}"), ("elevation_m", "{elevation_m}"), ("location", "{region}"),
                 ("first_ascent", "{first_ascent} by {first_climber}"), ("rock", "{rock}")),
    "person": (("name", "{title}"), ("birth_date", "{{{{birth year|{born}}}}}"), ("birth_place", "{region}"),
               ("occupation", "{occupation}"), ("notable_works", "''{known_for}''")),
    "company": (("name", "{title}"), ("industry", "{industry}"), ("founded", "{founded}"),
                ("founder", "{founder}"), ("hq_location_country", "{region}"), ("num_employees", "{employees}")),
    "band": (("name", "{title}"), ("origin", "{region}"), ("genre", "{genre}"), ("years_active", "{formed}–present")),
    "species": (("name", "{title}"), ("familia", "{family}"), ("authority", "{describer}, {discovered}"),
                ("status", "{status}")),
}

INFOBOX_NAMES = {
    "city": "Infobox settlement", "river": "Infobox river", "mountain": "Infobox mountain",
    "person": "Infobox person", "company": "Infobox company", "band": "Infobox musical artist",
    "species": "Speciesbox",
}

CATEGORY_PATTERNS = {
    "city": ("Cities in {region}", "Populated places established in {founded}"),
    "river": ("Rivers of {region}",),
    "mountain": ("Mountains of {region}",),
    "person": ("{born} births", "People from {region}", "{occupation_plural} from {region}"),
    "company": ("Companies of {region}", "{industry_cap} companies"),
    "band": ("Musical groups from {region}", "Musical groups established in {formed}"),
    "species": ("{family}", "Biota of {region}"),
}
