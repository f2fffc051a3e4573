"""Fifty short documents on distinct topics, and questions whose answer is in one of them."""
# ruff: noqa: E501

from __future__ import annotations

# id -> (category, text)
DOCUMENTS: dict[str, tuple[str, str]] = {
    "photosynthesis": (
        "science",
        "Photosynthesis is how green plants turn light into chemical energy. Chlorophyll in the chloroplasts absorbs sunlight, and the plant combines carbon dioxide and water into glucose, releasing oxygen as a by-product.",
    ),
    "black-holes": (
        "science",
        "A black hole is a region of spacetime where gravity is so strong that nothing, not even light, can escape. Its boundary is called the event horizon, and stellar black holes form when massive stars collapse.",
    ),
    "vaccines": (
        "health",
        "Vaccines train the immune system by exposing it to a harmless piece or weakened form of a pathogen. The body produces antibodies and memory cells, so a later infection is fought off quickly.",
    ),
    "sourdough": (
        "cooking",
        "Sourdough bread rises thanks to a starter, a fermented mix of flour and water full of wild yeast and lactic acid bacteria. A long, cool fermentation gives the loaf its tangy flavour and open crumb.",
    ),
    "espresso": (
        "cooking",
        "Espresso is brewed by forcing hot water at about nine bars of pressure through finely ground coffee. A good shot takes 25 to 30 seconds and is topped with a layer of golden crema.",
    ),
    "roman-aqueducts": (
        "history",
        "Roman aqueducts carried water from distant springs into cities using a gentle, continuous downhill gradient. Arched bridges such as the Pont du Gard let the channels cross valleys.",
    ),
    "printing-press": (
        "history",
        "Johannes Gutenberg's printing press, built around 1440 in Mainz, used movable metal type and oil-based ink. It made books cheap enough to spread literacy and ideas across Europe.",
    ),
    "french-revolution": (
        "history",
        "The French Revolution began in 1789 with the storming of the Bastille. It abolished the monarchy, proclaimed the rights of man, and ended with Napoleon seizing power in 1799.",
    ),
    "tcp-handshake": (
        "technology",
        "A TCP connection opens with a three-way handshake: the client sends SYN, the server answers SYN-ACK, and the client replies ACK. Sequence numbers agreed here let TCP deliver bytes reliably and in order.",
    ),
    "dns": (
        "technology",
        "The Domain Name System translates human-readable host names like example.com into IP addresses. Resolvers query root, top-level domain and authoritative name servers, caching answers for their time to live.",
    ),
    "git-branches": (
        "technology",
        "In Git a branch is just a movable pointer to a commit. Creating one is cheap, and merging or rebasing brings the work of one branch into another.",
    ),
    "garbage-collection": (
        "technology",
        "Garbage collection automatically frees memory that a program can no longer reach. Tracing collectors mark live objects from the roots and sweep the rest, while reference counting frees an object when its count drops to zero.",
    ),
    "marathon": (
        "sports",
        "The marathon is a long-distance running race of 42.195 kilometres. Runners train for months, building weekly mileage and practising fuelling so they do not hit the wall near kilometre 30.",
    ),
    "offside-rule": (
        "sports",
        "In football an attacker is offside if, when the ball is played to them, they are nearer the opponents' goal line than both the ball and the second-last defender. Being offside in one's own half is not possible.",
    ),
    "chess-openings": (
        "games",
        "Chess openings such as the Sicilian Defence and the Queen's Gambit aim to control the centre and develop pieces quickly. Castling early keeps the king safe while the rooks connect.",
    ),
    "volcanoes": (
        "science",
        "Volcanoes form where molten rock, called magma, reaches the surface through the crust. Explosive eruptions happen when gas-rich, viscous magma builds pressure, as at Mount St. Helens in 1980.",
    ),
    "honeybees": (
        "nature",
        "Honeybees live in colonies with one queen, thousands of female workers and some male drones. Foragers share the location of flowers with a waggle dance, and the colony stores nectar as honey.",
    ),
    "coral-reefs": (
        "nature",
        "Coral reefs are built by tiny animals called polyps that secrete calcium carbonate skeletons. Warming seas cause bleaching, when corals expel the algae that feed them and turn white.",
    ),
    "inflation": (
        "economics",
        "Inflation is a general rise in prices that reduces the purchasing power of money. Central banks usually fight it by raising interest rates, which cools borrowing and spending.",
    ),
    "compound-interest": (
        "economics",
        "Compound interest is interest earned on both the original principal and the interest already added. Over long periods it makes savings grow exponentially, which is why starting early matters.",
    ),
    "impressionism": (
        "art",
        "Impressionism was a nineteenth-century French painting movement led by Monet, Renoir and Degas. Painters worked outdoors with quick, visible brush strokes to capture changing light.",
    ),
    "jazz": (
        "music",
        "Jazz grew out of African American communities in New Orleans in the early twentieth century. It blends blues, ragtime and brass band music, and prizes improvisation and swing rhythm.",
    ),
    "piano-tuning": (
        "music",
        "A piano tuner adjusts the tension of each string with a tuning hammer until its pitch matches equal temperament. Most pianos need tuning once or twice a year as humidity changes.",
    ),
    "bicycle-maintenance": (
        "everyday",
        "Keeping a bicycle chain clean and lubricated makes shifting smooth and stops rust. Check tyre pressure weekly and replace brake pads when the grooves are worn away.",
    ),
    "composting": (
        "everyday",
        "Composting turns kitchen scraps and garden waste into rich soil. Mix green nitrogen-rich material with brown carbon-rich material, keep the pile moist and turn it for air.",
    ),
    "sleep-cycles": (
        "health",
        "A night of sleep cycles through light sleep, deep slow-wave sleep and REM sleep about every ninety minutes. Most vivid dreaming happens during REM, when the eyes move rapidly.",
    ),
    "hydration": (
        "health",
        "The body loses water through breathing, sweat and urine, so it must be replaced every day. Thirst, dark urine and headaches are early signs of dehydration.",
    ),
    "plate-tectonics": (
        "science",
        "Plate tectonics explains how the rigid outer shell of the Earth is broken into plates that drift on the mantle. Where plates collide, mountains rise and earthquakes strike.",
    ),
    "moon-landing": (
        "history",
        "Apollo 11 landed on the Moon on 20 July 1969. Neil Armstrong and Buzz Aldrin walked on the surface while Michael Collins orbited in the command module.",
    ),
    "great-wall": (
        "history",
        "The Great Wall of China is a series of fortifications built over many centuries to protect against raids from the northern steppe. Most of the surviving brick wall dates from the Ming dynasty.",
    ),
    "rust-ownership": (
        "technology",
        "Rust's ownership model gives every value a single owner, and the value is dropped when the owner goes out of scope. The borrow checker enforces at compile time that references never outlive their data.",
    ),
    "sql-joins": (
        "technology",
        "An SQL inner join returns rows that have matching values in both tables, while a left join keeps every row of the left table and fills missing matches with NULL.",
    ),
    "solar-panels": (
        "energy",
        "Solar panels are made of photovoltaic cells, usually silicon, that convert sunlight directly into electricity. An inverter changes their direct current into the alternating current used at home.",
    ),
    "wind-turbines": (
        "energy",
        "Wind turbines turn the kinetic energy of moving air into electricity. The blades spin a rotor connected to a generator, and turbines turn to face the wind automatically.",
    ),
    "electric-cars": (
        "energy",
        "Electric cars run on lithium-ion battery packs that power electric motors. Regenerative braking recovers energy when slowing down, and fast chargers can refill most of a battery in half an hour.",
    ),
    "origami": (
        "art",
        "Origami is the Japanese art of folding a single sheet of paper into a figure without cutting or gluing. The classic paper crane uses valley folds, mountain folds and a squash fold.",
    ),
    "tea-ceremony": (
        "culture",
        "The Japanese tea ceremony is a ritual preparation of powdered green tea, matcha, whisked in a bowl. Every gesture of the host expresses harmony, respect, purity and tranquillity.",
    ),
    "olympics": (
        "sports",
        "The modern Olympic Games were revived by Pierre de Coubertin and first held in Athens in 1896. Summer and winter Games now alternate every two years.",
    ),
    "tides": (
        "science",
        "Ocean tides are caused mainly by the Moon's gravity pulling on the Earth's water. Spring tides, with the largest range, happen when the Sun and Moon line up at new and full moon.",
    ),
    "antibiotics": (
        "health",
        "Antibiotics kill bacteria or stop them from multiplying, but they do nothing against viruses. Overuse lets resistant strains survive and spread, so courses should be taken exactly as prescribed.",
    ),
    "password-hashing": (
        "technology",
        "Passwords should be stored as slow, salted hashes using algorithms like bcrypt, scrypt or Argon2. A unique salt per user defeats precomputed rainbow tables.",
    ),
    "machine-learning-overfitting": (
        "technology",
        "A model overfits when it memorises noise in the training data and then performs poorly on new data. Regularisation, more data and early stopping with a validation set help it generalise.",
    ),
    "mount-everest": (
        "geography",
        "Mount Everest, on the border of Nepal and China, is the highest mountain above sea level at 8,849 metres. Climbers acclimatise for weeks because the air near the summit holds a third of the oxygen at sea level.",
    ),
    "sahara": (
        "geography",
        "The Sahara is the largest hot desert in the world, covering much of North Africa. Its dunes, rocky plateaus and oases receive less than 100 millimetres of rain a year in many places.",
    ),
    "amazon-rainforest": (
        "geography",
        "The Amazon rainforest spans nine countries in South America and holds an enormous share of the planet's species. Deforestation for cattle ranching and soy farming threatens it.",
    ),
    "knitting": (
        "crafts",
        "Knitting makes fabric by pulling loops of yarn through other loops with two needles. The knit stitch and the purl stitch combine into patterns such as stockinette and ribbing.",
    ),
    "beekeeping-vs-wasps": (
        "nature",
        "Wasps, unlike honeybees, can sting repeatedly because their stingers are smooth. Many wasps are predators that control garden pests such as caterpillars and aphids.",
    ),
    "dinosaurs-extinction": (
        "science",
        "Most dinosaurs died out 66 million years ago when an asteroid struck near Chicxulub in Mexico. The impact threw dust into the sky, cooling the climate and collapsing food chains.",
    ),
    "shakespeare": (
        "literature",
        "William Shakespeare wrote about 39 plays, including Hamlet, Macbeth and Romeo and Juliet, and 154 sonnets. Many of his plays were first performed at the Globe Theatre in London.",
    ),
    "haiku": (
        "literature",
        "A haiku is a short Japanese poem of three lines with five, seven and five syllables. Traditional haiku include a seasonal word and capture a single moment in nature.",
    ),
}

# question -> id of the document that answers it
QUESTIONS: dict[str, str] = {
    "How do plants make food from sunlight?": "photosynthesis",
    "What happens to light near an event horizon?": "black-holes",
    "How long should an espresso shot take to pull?": "espresso",
    "Who invented movable type printing in Europe?": "printing-press",
    "What are the three packets exchanged when opening a TCP connection?": "tcp-handshake",
    "How do I stop my bike chain from rusting?": "bicycle-maintenance",
    "Why do central banks raise interest rates?": "inflation",
    "When did astronauts first walk on the Moon?": "moon-landing",
    "How should passwords be stored in a database?": "password-hashing",
    "What caused the dinosaurs to go extinct?": "dinosaurs-extinction",
}
